"""What the layer-1 benchmark relies on: the request counter, the gateway's URL limit, the bulk forms at
thousands of nodes (SMD and PCS queries in a body, BSS filtered by a body, a PCS transition of thousands of
records nodes, an edge port found without scanning every node)."""
from __future__ import annotations

import pytest

from conftest import BSS_PREFIX, PCS_PREFIX, SMD_PREFIX


@pytest.fixture(scope="module")
def site(lab):
    resp = lab.admin("POST", "/seed", json={"nodes": 3000, "groups": 0})
    assert resp.status_code == 200, resp.text
    s = lab.session("openchami")
    nodes = sorted(s.get("/hsm/v2/State/Components?type=Node").json()["Components"], key=lambda c: c["NID"])
    lab.nodes = [c["ID"] for c in nodes]
    return lab


def test_request_counter_counts_service_calls_by_route_and_resets(site):
    s = site.session("openchami")               # (its token request comes before the reset)
    site.admin("GET", "/requests?reset=1")
    s.get("/hsm/v2/groups/nope")
    s.get("/hsm/v2/groups/other")
    s.post("/hsm/v2/State/Components/Query", json={"ComponentIDs": site.nodes[:3]})
    site.admin("GET", "/status")                      # /lab/ is not counted
    counts = site.admin("GET", "/requests?reset=1").json()
    assert counts["routes"] == {"GET /hsm/v2/groups/<label>": 2, "POST /hsm/v2/State/Components/Query": 1}
    assert counts["total"] == 3
    assert site.admin("GET", "/requests").json() == {"total": 0, "routes": {}}


def test_a_url_longer_than_a_gateway_takes_is_refused_with_414(site):
    s = site.session("openchami")
    ids = "&".join("id=%s" % x for x in site.nodes)
    long = s.get("/hsm/v2/State/Components?" + ids)
    assert long.status_code == 414 and "8192" in long.text
    assert long.headers["Content-Type"].startswith("text/plain")
    fits = s.get("/hsm/v2/State/Components?" + "&".join("id=%s" % x for x in site.nodes[:300]))
    assert fits.status_code == 200 and len(fits.json()["Components"]) == 300


@pytest.mark.parametrize("face", ["openchami", "csm"])
def test_bulk_reads_take_thousands_of_nodes_in_one_body(site, face):
    s = site.session(face)
    query = s.post(SMD_PREFIX[face] + "/State/Components/Query",
                   json={"ComponentIDs": site.nodes + ["x9999c0s0b0n0"], "type": ["Node"]})
    assert query.status_code == 200 and len(query.json()["Components"]) == 3000
    by_nid = s.post(SMD_PREFIX[face] + "/State/Components/ByNID/Query", json={"NIDRanges": ["200001-201000", "202999"]})
    assert sorted(c["NID"] for c in by_nid.json()["Components"]) == list(range(200001, 201001)) + [202999]
    status = s.post(PCS_PREFIX[face] + "/power-status", json={"xname": site.nodes})
    assert status.status_code == 200 and len(status.json()["status"]) == 3000


def test_bss_filters_a_get_by_its_body_and_a_big_transition_runs_at_once(site):
    s = site.session("openchami")
    hosts = site.nodes[:2500]
    put = s.put(BSS_PREFIX["openchami"] + "/bootparameters", json={
        "hosts": hosts, "kernel": "https://lab/boot-images/vclab-base/bookworm/vmlinuz",
        "initrd": "https://lab/boot-images/vclab-base/bookworm/initramfs.img", "params": "console=ttyS0"})
    assert put.status_code == 200, put.text
    got = s.request("GET", BSS_PREFIX["openchami"] + "/bootparameters", json={"hosts": hosts[:1200]})
    assert got.status_code == 200
    assert sorted(h for e in got.json() for h in e["hosts"]) == sorted(hosts[:1200])
    t = s.post(PCS_PREFIX["openchami"] + "/transitions",
               json={"operation": "on", "location": [{"xname": x} for x in site.nodes[:3000]]}).json()
    done = site.wait_transition(t["transitionID"], timeout=120)
    counts = done["taskCounts"]
    # the 2,500 with boot parameters are on; the other 500 either were already (seeded on) or cannot boot
    assert counts["total"] == 3000 and counts["succeeded"] >= 2500
    failed = [task for task in done["tasks"] if task["taskStatus"] == "failed"]
    assert all(task["xname"] not in set(hosts) and "no boot parameters" in task["error"] for task in failed)
    on = s.post(PCS_PREFIX["openchami"] + "/power-status", json={"xname": hosts}).json()["status"]
    assert {item["powerState"] for item in on} == {"on"}
    states = s.post("/hsm/v2/State/Components/Query", json={"ComponentIDs": hosts}).json()["Components"]
    assert {c["State"] for c in states} == {"Ready"}


def test_an_edge_port_of_a_seeded_node_is_found_and_patched(site):
    s = site.session("openchami")
    node = site.nodes[2999]
    expanded = s.get("/apis/fabric-manager/fabric/ports?expand=true").json()["documents"]
    assert len(expanded) == 3000
    link = next(path for path, doc in expanded.items() if doc["dst_port"] == node + "h0")
    assert s.post("/apis/fabric-manager/fabric/vlans", json={"id": 77, "name": "scale"}).status_code == 200
    assert s.post("/apis/fabric-manager/fabric/port-policies",
                  json={"documentSelfLink": "scale", "allowedVlans": ["/fabric/vlans/77"]}).status_code == 200
    patched = s.patch("/apis/fabric-manager" + link, json={"portPolicyLinks": ["/fabric/port-policies/scale"]})
    assert patched.status_code == 200 and patched.json()["dst_port"] == node + "h0"
    assert s.get("/apis/fabric-manager" + link).json()["portPolicyLinks"] == ["/fabric/port-policies/scale"]
    listing = site.admin("GET", "/nodes?all=1")
    assert listing.status_code == 200, listing.text
    vlans = {n["xname"]: n["vlans"] for n in listing.json()["nodes"]}
    assert vlans[node] == [77]
