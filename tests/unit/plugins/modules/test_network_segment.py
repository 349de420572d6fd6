"""network_segment: VLAN through the fabric manager (edge ports, port policies), PKey through UFM (Basic auth)."""
import base64
import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from ansible_collections.hpc.vcluster.plugins.modules import network_segment

from vc_harness import URL, FakeSmd, Failed, problem, run

N0, N1, N2, N3 = ("x1000c0s%db0n0" % i for i in range(4))
FM = URL + "/apis/fabric-manager/fabric"
UFM = URL + "/ufmRest"


class FakeFabric:
    def __init__(self, rsps, nodes=(N0, N1, N2, N3), expand=True):
        self.vlans, self.policies, self.writes = {}, {}, []
        self.expand = expand
        self.ports = dict(("x1000c0r0j%dp0" % i, {"dst_port": n + "h0", "portPolicyLinks": []})
                          for i, n in enumerate(nodes))
        for method in ("GET", "POST", "PATCH", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(FM) + r"/.*"), callback=self._dispatch)

    def xenon_err(self, status, message):
        return (status, {"Content-Type": "application/json"},
                json.dumps({"message": message, "statusCode": status, "errorCode": 0}))

    def _dispatch(self, request):
        url = urlparse(request.url)
        path = url.path[len(urlparse(FM).path):]
        body = json.loads(request.body) if request.body else None
        ok = (200, {"Content-Type": "application/json"})
        if request.method != "GET":
            self.writes.append((request.method, path, body))
        if path == "/ports" and request.method == "GET":
            links = ["/fabric/ports/%s" % p for p in sorted(self.ports)]
            out = {"documentLinks": links, "documentCount": len(links)}
            if self.expand and "expand" in parse_qs(url.query):
                out["documents"] = dict(("/fabric/ports/%s" % p, dict(d, documentSelfLink="/fabric/ports/%s" % p))
                                        for p, d in self.ports.items())
            return ok + (json.dumps(out),)
        m = re.match(r"^/ports/([^/]+)$", path)
        if m:
            port = self.ports[m.group(1)]
            if request.method == "PATCH":
                port["portPolicyLinks"] = body["portPolicyLinks"]
            return ok + (json.dumps(dict(port, documentSelfLink="/fabric/ports/" + m.group(1))),)
        if path == "/vlans" and request.method == "POST":
            if str(body["id"]) in self.vlans:
                return self.xenon_err(409, "Service already started")
            self.vlans[str(body["id"])] = body
            return ok + (json.dumps(body),)
        m = re.match(r"^/vlans/(\d+)$", path)
        if m:
            v = self.vlans.get(m.group(1))
            if v is None:
                return self.xenon_err(404, "Service not found: " + path)
            if request.method == "DELETE":
                del self.vlans[m.group(1)]
            return ok + (json.dumps(v),)
        if path == "/port-policies" and request.method == "POST":
            self.policies[body["documentSelfLink"]] = body
            return ok + (json.dumps(body),)
        m = re.match(r"^/port-policies/([^/]+)$", path)
        if m:
            p = self.policies.get(m.group(1))
            if p is None:
                return self.xenon_err(404, "Service not found: " + path)
            if request.method == "DELETE":
                del self.policies[m.group(1)]
            return ok + (json.dumps(p),)
        return self.xenon_err(404, "no " + path)

    def on_vlan(self, label):
        link = "/fabric/port-policies/" + label
        return sorted(d["dst_port"][:-2] for d in self.ports.values() if link in d["portPolicyLinks"])


@pytest.mark.parametrize("expand", [True, False])
def test_vlan_present_links_members_and_is_idempotent(rsps, expand):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    fm = FakeFabric(rsps, expand=expand)
    fm.ports["x1000c0r0j0p0"]["portPolicyLinks"] = ["/fabric/port-policies/site-default"]
    res = run(network_segment.main, {"label": "vc_blue", "vlan": 210})
    assert res["changed"] and res["added"] == [N0, N1] and res["segment"]["members"] == [N0, N1]
    assert fm.vlans["210"]["name"] == "vc_blue"
    assert fm.policies["vc_blue"]["allowedVlans"] == ["/fabric/vlans/210"]
    assert fm.policies["vc_blue"]["nativeVlanId"] == "/fabric/vlans/210"
    assert fm.on_vlan("vc_blue") == [N0, N1]
    links = fm.ports["x1000c0r0j0p0"]["portPolicyLinks"]
    assert links == ["/fabric/port-policies/site-default", "/fabric/port-policies/vc_blue"]
    assert res["diff"]["before"] == {} and res["diff"]["after"]["members"] == [N0, N1]
    writes = len(fm.writes)
    again = run(network_segment.main, {"label": "vc_blue", "vlan": 210})
    assert again["changed"] is False and len(fm.writes) == writes


def test_vlan_follows_label_membership(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    fm = FakeFabric(rsps)
    run(network_segment.main, {"label": "vc_blue", "vlan": 210})
    smd.groups["vc_blue"]["members"]["ids"] = [N1, N2]
    res = run(network_segment.main, {"label": "vc_blue", "vlan": 210}, check=True)
    assert res["changed"] and res["added"] == [N2] and res["removed"] == [N0]
    assert fm.on_vlan("vc_blue") == [N0, N1]  # check mode changed nothing
    res = run(network_segment.main, {"label": "vc_blue", "vlan": 210})
    assert fm.on_vlan("vc_blue") == [N1, N2]
    assert res["diff"]["before"]["members"] == [N0, N1]


def test_vlan_of_another_segment_is_refused(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0])
    fm = FakeFabric(rsps)
    fm.vlans["210"] = {"id": 210, "name": "vc_red", "status": "ONLINE"}
    with pytest.raises(Failed) as err:
        run(network_segment.main, {"label": "vc_blue", "vlan": 210})
    assert "vc_red" in err.value.result["msg"] and fm.writes == []


def test_vlan_absent_unlinks_and_deletes_and_is_idempotent(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    fm = FakeFabric(rsps)
    run(network_segment.main, {"label": "vc_blue", "vlan": 210})
    res = run(network_segment.main, {"label": "vc_blue", "vlan": 210, "state": "absent"})
    assert res["changed"] and res["removed"] == [N0, N1]
    assert fm.on_vlan("vc_blue") == [] and fm.policies == {} and fm.vlans == {}
    assert run(network_segment.main, {"label": "vc_blue", "vlan": 210, "state": "absent"})["changed"] is False


def test_vlan_limited_membership_is_tagged_only_and_change_recreates_policy(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0])
    fm = FakeFabric(rsps)
    run(network_segment.main, {"label": "vc_blue", "vlan": 210})
    res = run(network_segment.main, {"label": "vc_blue", "vlan": 210, "membership": "limited"})
    assert res["changed"] and "nativeVlanId" not in fm.policies["vc_blue"]
    assert fm.on_vlan("vc_blue") == [N0]


def test_vlan_rbac_refused_before_any_call(rsps):
    FakeSmd(rsps)
    FakeFabric(rsps)
    with pytest.raises(Failed) as err:
        run(network_segment.main, {"label": "vc_red", "vlan": 210, "allowed_labels": ["vc_blue"]})
    assert "access denied" in err.value.result["msg"] and len(rsps.calls) == 0


# ------------------------------------------------------------------------------ UFM
class FakeUfm:
    def __init__(self, rsps, smd):
        self.pkeys, self.auth_seen = {}, []
        self.guid = dict((c["ID"], "0c42a1030000%04x" % c["NID"]) for c in smd.components)
        self.host = dict((c["ID"], "nid%06d" % c["NID"]) for c in smd.components)
        for method in ("GET", "POST", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(UFM) + r"/.*"), callback=self._dispatch)

    def _dispatch(self, request):
        header = request.headers.get("Authorization", "")
        self.auth_seen.append(header)
        if header != "Basic " + base64.b64encode(b"admin:pw").decode():
            return (401, {"WWW-Authenticate": 'Basic realm="UFM"'}, "Unauthorized")
        path = urlparse(request.url).path[len(urlparse(UFM).path):]
        body = json.loads(request.body) if request.body else None
        ok = (200, {"Content-Type": "application/json"})
        if path == "/resources/ports":
            return ok + (json.dumps([{"guid": g, "system_name": self.host[x], "number": 1}
                                     for x, g in sorted(self.guid.items())]),)
        if path == "/resources/pkeys" and request.method == "POST":
            p = self.pkeys.setdefault(body["pkey"], {"guids": {}})
            for g in body["guids"]:
                p["guids"][g] = body.get("membership", "full")
            return (200, {}, "")
        if path == "/resources/pkeys/add":
            self.pkeys[body["pkey"]] = {"guids": {}}
            return (200, {}, "")
        m = re.match(r"^/resources/pkeys/(0x[0-9a-f]+)/guids/(.+)$", path)
        if m:
            for g in m.group(2).split(","):
                self.pkeys[m.group(1)]["guids"].pop(g)
            return (200, {}, "")
        m = re.match(r"^/resources/pkeys/(0x[0-9a-f]+)$", path)
        if m:
            p = self.pkeys.get(m.group(1))
            if request.method == "DELETE":
                self.pkeys.pop(m.group(1))
                return (200, {}, "")
            if p is None:
                return ok + ("{}",)
            guids = [{"guid": g, "membership": mm} for g, mm in sorted(p["guids"].items())]
            return ok + (json.dumps({"partition": "x", "guids": guids}),)
        return problem(404, "Not Found", path)


def test_pkey_members_by_guid_with_basic_auth_and_foreign_guids_kept(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    ufm = FakeUfm(rsps, smd)
    ufm.pkeys["0xa12"] = {"guids": {"0002c903000e0b72": "full", ufm.guid[N3]: "full"}}  # a storage server, N3
    args = {"label": "vc_blue", "pkey": "0x0A12", "ufm_username": "admin", "ufm_password": "pw"}
    res = run(network_segment.main, args)
    assert res["changed"] and res["added"] == [N0, N1] and res["removed"] == [N3]
    assert ufm.pkeys["0xa12"]["guids"] == {"0002c903000e0b72": "full", ufm.guid[N0]: "full", ufm.guid[N1]: "full"}
    assert all(h.startswith("Basic ") for h in ufm.auth_seen)  # never the site's bearer token
    assert run(network_segment.main, args)["changed"] is False
    res = run(network_segment.main, dict(args, membership="limited"))
    assert res["changed"] and ufm.pkeys["0xa12"]["guids"][ufm.guid[N0]] == "limited"
    res = run(network_segment.main, dict(args, state="absent"))
    assert res["changed"] and "0xa12" not in ufm.pkeys
    assert run(network_segment.main, dict(args, state="absent"))["changed"] is False


def test_pkey_needs_ufm_credentials_and_valid_pkey(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0])
    FakeUfm(rsps, smd)
    with pytest.raises(Failed) as err:
        run(network_segment.main, {"label": "vc_blue", "pkey": "0x12"})
    assert "ufm_username" in err.value.result["msg"]
    with pytest.raises(Failed) as err:
        run(network_segment.main, {"label": "vc_blue", "pkey": "0x8000", "ufm_username": "a", "ufm_password": "b"})
    assert "out of range" in err.value.result["msg"]
    with pytest.raises(Failed) as err:
        run(network_segment.main, {"label": "vc_blue", "pkey": "0x12", "ufm_username": "admin", "ufm_password": "bad"})
    assert "401" in err.value.result["msg"] and "bad" not in err.value.result["msg"]
