"""Network segregation: Slingshot fabric manager VLANs/port policies (driver calls), UFM PKeys."""
from __future__ import annotations

import pytest

from conftest import make_nodes

FM = "/apis/fabric-manager/fabric"


@pytest.fixture(scope="module")
def site(lab):
    make_nodes(lab, 3, 0)
    return lab


@pytest.fixture(scope="module")
def fm(site):
    return site.session("csm")


def vlans(site) -> dict:
    return {n["xname"]: n["vlans"] for n in site.admin("GET", "/nodes").json()["nodes"]}


def edge_port(fm, xname: str) -> str:
    ports = fm.get(FM + "/ports?expand=true").json()
    for link, doc in ports["documents"].items():
        if doc["dst_port"] == xname + "h0":
            return link
    raise AssertionError(f"no edge port for {xname}")


def test_topology_is_derived_from_smd(fm):
    switches = fm.get(FM + "/switches").json()
    assert switches["documentLinks"] == ["/fabric/switches/x1000c0r0b0"] and switches["documentCount"] == 1
    sw = fm.get(FM + "/switches/x1000c0r0b0").json()
    assert [p["conn_port"] for p in sw["edgePorts"]] == ["x1000c0r0j0p0", "x1000c0r0j1p0", "x1000c0r0j2p0"]
    assert sw["documentSelfLink"] == "/fabric/switches/x1000c0r0b0" and "documentKind" in sw
    port = fm.get(FM + "/ports/x1000c0r0j1p0").json()
    assert port["dst_port"] == "x1000c0s1b0n0h0" and port["switchLink"] == "/fabric/switches/x1000c0r0b0"
    assert port["portPolicyLinks"] == []
    missing = fm.get(FM + "/ports/x9c0r0j0p0")
    assert missing.status_code == 404 and set(missing.json()) == {"message", "statusCode", "errorCode", "documentKind"}


def test_vlan_policy_attach_detach_delete(site, fm):
    assert fm.post(FM + "/vlans", json={"id": 210, "name": "vcblue", "status": "ONLINE"}).json()["documentSelfLink"] == \
        "/fabric/vlans/210"
    assert fm.post(FM + "/vlans", json={"id": 210, "name": "again"}).status_code == 409
    assert fm.post(FM + "/vlans", json={"id": 5000}).status_code == 400
    pol = fm.post(FM + "/port-policies", json={"allowedVlans": ["/fabric/vlans/210"], "nativeVlanId": "/fabric/vlans/210",
                                               "isUntaggedAllowed": True, "documentSelfLink": "vcblue"})
    assert pol.status_code == 200 and pol.json()["documentSelfLink"] == "/fabric/port-policies/vcblue"
    assert fm.post(FM + "/port-policies", json={"allowedVlans": ["/fabric/vlans/99"],
                                                "documentSelfLink": "ghost"}).status_code == 400
    p0, p1 = edge_port(fm, "x1000c0s0b0n0"), edge_port(fm, "x1000c0s1b0n0")
    for p in (p0, p1):
        patched = fm.patch("/apis/fabric-manager" + p, json={"portPolicyLinks": ["/fabric/port-policies/vcblue"]})
        assert patched.status_code == 200 and patched.json()["portPolicyLinks"] == ["/fabric/port-policies/vcblue"]
    v = vlans(site)
    assert v["x1000c0s0b0n0"] == [210] and v["x1000c0s1b0n0"] == [210] and v["x1000c0s2b0n0"] == []
    # detaching (PATCH without the policy) detaches the node from the VLAN
    assert fm.patch("/apis/fabric-manager" + p1, json={"portPolicyLinks": []}).status_code == 200
    assert vlans(site)["x1000c0s1b0n0"] == []
    assert fm.patch("/apis/fabric-manager" + p1, json={"portPolicyLinks": ["/fabric/port-policies/nope"]}).status_code == 400
    # deleting the VLAN detaches every node and removes it
    assert fm.delete(FM + "/vlans/210").status_code == 200
    assert vlans(site)["x1000c0s0b0n0"] == []
    assert fm.get(FM + "/vlans/210").status_code == 404
    assert fm.delete(FM + "/port-policies/vcblue").status_code == 200


def test_openchami_tokens_work_on_the_fabric_manager(site):
    assert site.session("openchami").get(FM + "/vlans").status_code == 200


def test_ufm_pkeys_and_guids(site):
    u = site.credentials["ufm"]
    auth = (u["username"], u["password"])
    ports = site.get("/ufmRest/resources/ports", auth=auth).json()
    by_host = {p["system_name"]: p["guid"] for p in ports}
    assert set(by_host) == {"nid000001", "nid000002", "nid000003"}
    assert all(len(g) == 16 for g in by_host.values())
    assert ports[0]["node_description"] == ports[0]["system_name"] + " HCA-1"
    assert site.get("/ufmRest/resources/pkeys/0x0a12", auth=auth).json() == {}  # missing: {} with 200
    assert site.request("POST", "/ufmRest/resources/pkeys/add", auth=auth,
                        json={"pkey": "0x0a12", "index0": False, "ip_over_ib": True}).status_code == 200
    g1, g2 = by_host["nid000001"], by_host["nid000002"]
    assert site.request("POST", "/ufmRest/resources/pkeys", auth=auth,
                        json={"pkey": "0xa12", "guids": [g1, g2], "membership": "full"}).status_code == 200
    one = site.get("/ufmRest/resources/pkeys/0x0A12?guids_data=true", auth=auth).json()
    assert sorted(g["guid"] for g in one["guids"]) == sorted([g1, g2])
    listing = site.get("/ufmRest/resources/pkeys?guids_data=true", auth=auth).json()
    assert set(listing) == {"0xa12"} and all(g["membership"] == "full" for g in listing["0xa12"]["guids"])
    assert site.request("DELETE", f"/ufmRest/resources/pkeys/0xa12/guids/{g1}", auth=auth).status_code == 200
    assert [g["guid"] for g in site.get("/ufmRest/resources/pkeys/0xa12?guids_data=true", auth=auth).json()["guids"]] == [g2]
    assert site.request("POST", "/ufmRest/actions/remove_guids_from_pkey", auth=auth,
                        json={"pkey": "0xa12", "guids": [g2]}).status_code == 200
    assert site.request("POST", "/ufmRest/resources/pkeys", auth=auth,
                        json={"pkey": "0xa12", "guids": ["xyz"]}).status_code == 400
    assert site.request("POST", "/ufmRest/resources/pkeys", auth=auth,
                        json={"pkey": "0x8000", "guids": [g1]}).status_code == 400
    assert site.request("DELETE", "/ufmRest/resources/pkeys/0xa12", auth=auth).status_code == 200
    assert site.get("/ufmRest/resources/pkeys/0xa12", auth=auth).json() == {}
