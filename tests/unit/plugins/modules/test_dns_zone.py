"""dns_zone against a stateful PowerDNS API fake (shapes and status codes as PowerDNS 4.7 answers,
seen from the lab's site DNS): create, update in one PATCH, purge, ownership, deletion, refusals."""
import json
import re
from urllib.parse import urlparse

import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils import _pdns
from ansible_collections.hpc.vcluster.plugins.modules import dns_zone

from vc_harness import Failed, run

API = "http://dns.example:8081"
KEY = "dns-api-secret"


class FakePdns:
    def __init__(self, rsps):
        self.zones = {}
        self.writes = []
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(API) + r"/api/v1/servers/localhost/.*"), callback=self._dispatch)

    def _dispatch(self, request):
        if request.headers.get("X-API-Key") != KEY:
            return (401, {}, "Unauthorized")
        path = urlparse(request.url).path[len("/api/v1/servers/localhost"):]
        body = json.loads(request.body) if request.body else None
        if request.method != "GET":
            self.writes.append((request.method, path, body))
        if path == "/zones" and request.method == "POST":
            if body["name"] in self.zones:
                return (409, {"Content-Type": "application/json"}, json.dumps({"error": "Conflict"}))
            soa = {"name": body["name"], "type": "SOA", "ttl": 3600, "comments": [],
                   "records": [{"content": "ns.%s hostmaster.%s 1 10800 3600 604800 3600" % (body["name"], body["name"]),
                                "disabled": False}]}
            zone = {"name": body["name"], "id": body["name"], "kind": body["kind"], "account": body.get("account", ""),
                    "rrsets": [soa] + [dict(r, comments=[]) for r in body["rrsets"]]}
            self.zones[body["name"]] = zone
            return (201, {"Content-Type": "application/json"}, json.dumps(zone))
        m = re.match(r"^/zones/([^/]+)$", path)
        if not m:
            return (404, {}, "Not Found")
        zone = self.zones.get(m.group(1))
        if zone is None:
            return (404, {"Content-Type": "application/json"}, json.dumps({"error": "Not Found"}))
        if request.method == "GET":
            return (200, {"Content-Type": "application/json"}, json.dumps(zone))
        if request.method == "DELETE":
            del self.zones[m.group(1)]
            return (204, {}, "")
        if request.method == "PUT":
            zone.update(body)
            return (204, {}, "")
        for rr in body["rrsets"]:
            zone["rrsets"] = [r for r in zone["rrsets"] if (r["name"], r["type"]) != (rr["name"], rr["type"])]
            if rr["changetype"] == "REPLACE":
                zone["rrsets"].append({"name": rr["name"], "type": rr["type"], "ttl": rr["ttl"], "records": rr["records"],
                                       "comments": []})
        return (204, {}, "")


def dns(args, **kw):
    full = dict(api_url=API, api_key=KEY, zone="demo.vc.internal", account="demo")
    full.update(args)
    return run(dns_zone.main, full, site=False, **kw)


NODES = [{"name": "nid000001", "content": ["10.252.1.1"]}, {"name": "nid000002", "content": ["10.252.1.2"]},
         {"name": "login", "type": "CNAME", "content": ["nid000001"]}]


def test_creates_the_zone_with_its_records_then_changes_nothing(rsps):
    fake = FakePdns(rsps)
    first = dns({"records": NODES})
    assert first["changed"] and first["created"]
    zone = fake.zones["demo.vc.internal."]
    assert zone["account"] == "demo"
    assert first["records"]["login.demo.vc.internal. CNAME"] == ["nid000001.demo.vc.internal."]
    again = dns({"records": NODES})
    assert not again["changed"] and again["changes"] == []
    assert len(fake.writes) == 1


def test_one_patch_for_every_change_and_purge_keeps_soa(rsps):
    fake = FakePdns(rsps)
    dns({"records": NODES})
    result = dns({"records": [{"name": "nid000001", "content": ["10.252.1.11"]},
                              {"name": "compute", "content": ["10.252.1.2", "10.252.1.1"]}]})
    assert result["changed"]
    assert sorted(result["changes"]) == sorted([
        "REPLACE nid000001.demo.vc.internal. A", "REPLACE compute.demo.vc.internal. A",
        "DELETE nid000002.demo.vc.internal. A", "DELETE login.demo.vc.internal. CNAME"])
    patches = [w for w in fake.writes if w[0] == "PATCH"]
    assert len(patches) == 1
    types = set((r["name"], r["type"]) for r in fake.zones["demo.vc.internal."]["rrsets"])
    assert ("demo.vc.internal.", "SOA") in types and ("nid000002.demo.vc.internal.", "A") not in types
    assert result["records"]["compute.demo.vc.internal. A"] == ["10.252.1.1", "10.252.1.2"]


def test_check_mode_and_diff(rsps):
    fake = FakePdns(rsps)
    dns({"records": NODES})
    result = dns({"records": NODES[:1]}, check=True)
    assert result["changed"] and "DELETE nid000002.demo.vc.internal. A" in result["changes"]
    assert "nid000002.demo.vc.internal. A" in result["diff"]["before"]
    assert "nid000002.demo.vc.internal. A" not in result["diff"]["after"]
    assert len(fake.writes) == 1


def test_absent_deletes_the_zone_and_again_is_no_change(rsps):
    fake = FakePdns(rsps)
    dns({"records": NODES})
    assert dns({"state": "absent"})["changed"]
    assert fake.zones == {}
    assert not dns({"state": "absent"})["changed"]


def test_another_owners_zone_is_refused(rsps):
    fake = FakePdns(rsps)
    dns({"records": NODES, "account": "other"})
    with pytest.raises(Failed) as err:
        dns({"records": NODES})
    assert "belongs to account 'other'" in err.value.result["msg"]
    with pytest.raises(Failed):
        dns({"state": "absent"})
    assert "demo.vc.internal." in fake.zones


@pytest.mark.parametrize("records, needle", [
    ([{"name": "bad name", "content": ["10.0.0.1"]}], "records[0].name"),
    ([{"name": "x.other.zone.", "content": ["10.0.0.1"]}], "is not in zone"),
    ([{"name": "n1", "content": ["10.0.0.300"]}], "not an IPv4 address"),
    ([{"name": "n1", "type": "AAAA", "content": ["10.0.0.1"]}], "not an IPv6 address"),
    ([{"name": "n1", "type": "CNAME", "content": ["a", "b"]}], "a CNAME has one target"),
    ([{"name": "n1", "content": ["10.0.0.1"]}, {"name": "n1", "type": "CNAME", "content": ["a"]}],
     "must be the only record"),
    ([{"name": "n1", "type": "TXT", "content": ["line\ninjected"]}], "control character"),
    ([{"name": "n1", "content": ["10.0.0.1"]}, {"name": "N1", "content": ["10.0.0.2"]}], "listed twice"),
])
def test_bad_records_are_refused_before_any_call(rsps, records, needle):
    fake = FakePdns(rsps)
    with pytest.raises(Failed) as err:
        dns({"records": records})
    assert needle in err.value.result["msg"]
    assert fake.writes == []


def test_wrong_key_is_named_not_quoted(rsps):
    FakePdns(rsps)
    with pytest.raises(Failed) as err:
        dns({"records": NODES, "api_key": "wrong-key-value"})
    assert "refused the API key" in err.value.result["msg"]
    assert "wrong-key-value" not in json.dumps(err.value.result)


def test_txt_and_srv_contents_are_normalised():
    out = _pdns.normalize_records("z.example", [
        {"name": "@", "type": "TXT", "content": ['vcluster "demo"']},
        {"name": "_slurmctld._tcp", "type": "SRV", "content": ["0 0 6817 nid000001"]}])
    assert out[("z.example.", "TXT")]["records"] == ['"vcluster \\"demo\\""']
    assert out[("_slurmctld._tcp.z.example.", "SRV")]["records"] == ["0 0 6817 nid000001.z.example."]
