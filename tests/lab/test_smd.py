"""SMD behaviour on both faces: filters, groups, partitions, memberships, interfaces."""
from __future__ import annotations

import pytest

from conftest import SMD_PREFIX, make_nodes


@pytest.fixture(scope="module")
def site(lab):
    make_nodes(lab, 6, 2)  # x1000c0s0..5b0n0 (NID 1..6), x3000c0s0..1b0n0 (NID 100001..2)
    return lab


@pytest.fixture(scope="module")
def oc(site):
    return site.session("openchami")


@pytest.fixture(scope="module")
def csm(site):
    return site.session("csm")


def ids(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [c["ID"] for c in resp.json()["Components"]]


def test_component_filters(oc):
    def get(q: str) -> list[str]:
        return ids(oc.get("/hsm/v2/State/Components" + q))
    assert get("?role=Service") == ["x3000c0s0b0n0", "x3000c0s1b0n0"]
    assert get("?ROLE=service") == get("?Role=SERVICE") == get("?role=Service")  # keys and values any case
    assert get("?role=!Compute") == get("?role=Service")  # negation
    assert get("?nid=1&nid=3") == ["x1000c0s0b0n0", "x1000c0s2b0n0"]  # repeated = OR
    assert get("?role=compute&nid=1&nid=100001") == ["x1000c0s0b0n0"]  # different keys = AND
    assert get("?nid_start=2&nid_end=3") == ["x1000c0s1b0n0", "x1000c0s2b0n0"]
    assert get("?id=X1000C0S01B0N0") == ["x1000c0s1b0n0"]  # xnames normalised
    assert get("?class=river&arch=x86&type=node") == ["x3000c0s0b0n0", "x3000c0s1b0n0"]
    assert get("?state=Off&state=!Off") == []
    only = oc.get("/hsm/v2/State/Components?nid=1&stateonly=true").json()["Components"]
    assert only == [{"ID": "x1000c0s0b0n0", "Type": "Node", "State": "Off", "Flag": "OK"}]
    bad = oc.get("/hsm/v2/State/Components?state=Sleeping")
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/problem+json"
    assert bad.json()["detail"] == "bad query param: Argument was not a valid HMS State"


def test_group_lifecycle_and_filters(oc):
    g = "/hsm/v2/groups"
    r = oc.post(g, json={"label": "Blue-Team", "description": "blue", "tags": ["Vc"],
                         "members": {"ids": ["x1000c0s0b0n0", "x1000c0s1b0n0"]}})
    assert r.status_code == 201 and r.json() == [{"URI": "/hsm/v2/groups/blue-team"}]
    assert r.headers["Location"] == "/hsm/v2/groups/blue-team"
    got = oc.get(g + "/BLUE-TEAM").json()  # labels are lower-cased everywhere
    assert got == {"label": "blue-team", "description": "blue", "tags": ["vc"],
                   "members": {"ids": ["x1000c0s0b0n0", "x1000c0s1b0n0"]}}
    add = oc.post(g + "/blue-team/members", json={"id": "x1000c0s2b0n0"})
    assert add.status_code == 201 and add.json() == [{"URI": "/hsm/v2/groups/blue-team/members/x1000c0s2b0n0"}]
    dup = oc.post(g + "/blue-team/members", json={"id": "x1000c0s2b0n0"})
    assert dup.status_code == 409
    assert dup.json()["detail"] == "operation would conflict with an existing member in the same group."
    assert ids(oc.get("/hsm/v2/State/Components?group=blue-team")) == \
        ["x1000c0s0b0n0", "x1000c0s1b0n0", "x1000c0s2b0n0"]
    nulls = ids(oc.get("/hsm/v2/State/Components?group=NULL&role=compute"))
    assert "x1000c0s0b0n0" not in nulls and "x1000c0s5b0n0" in nulls
    assert oc.get(g + "?tag=VC").json()[0]["label"] == "blue-team"
    assert oc.get(g + "?tag=other").json() == []
    rm = oc.delete(g + "/blue-team/members/x1000c0s2b0n0")
    assert rm.status_code == 200 and rm.json() == {"code": 0, "message": "deleted 1 entry"}
    assert oc.delete(g + "/blue-team/members/x1000c0s2b0n0").json()["detail"] == "group has no such member."
    assert oc.patch(g + "/blue-team", json={"description": "renamed"}).status_code == 204
    assert oc.get(g + "/blue-team").json()["description"] == "renamed"
    assert oc.patch(g + "/blue-team", json={}).status_code == 400
    gone = oc.delete(g + "/blue-team")
    assert gone.status_code == 200 and gone.json()["code"] == 0  # integer, not the spec's string
    assert oc.get(g + "/blue-team").status_code == 404


def test_group_validation(oc):
    g = "/hsm/v2/groups"
    bad_label = oc.post(g, json={"label": "no spaces"})
    assert bad_label.status_code == 400
    missing = oc.post(g, json={"label": "ghosts", "members": {"ids": ["x1000c0s99b0n0"]}})
    assert missing.status_code == 400 and missing.json()["detail"] == "linked component does not exist"
    hostname = oc.post(g, json={"label": "hosts", "members": {"ids": ["nid000001"]}})
    assert hostname.status_code == 400 and "invalid xname" in hostname.json()["detail"]
    assert oc.get(g + "/ghosts").status_code == 404
    undecodable = oc.post(g, data="{not json", headers={"Content-Type": "application/json"})
    assert undecodable.status_code == 500 and undecodable.json()["detail"].startswith("error decoding JSON")


def test_exclusive_groups_conflict(oc):
    g = "/hsm/v2/groups"
    assert oc.post(g, json={"label": "vc_a", "exclusiveGroup": "VCLUSTER",
                            "members": {"ids": ["x1000c0s3b0n0"]}}).status_code == 201
    assert oc.post(g, json={"label": "vc_b", "exclusiveGroup": "vcluster"}).status_code == 201
    clash = oc.post(g + "/vc_b/members", json={"id": "x1000c0s3b0n0"})
    assert clash.status_code == 409
    assert clash.json()["detail"] == "operation would conflict with an existing member in another exclusive group."
    clash2 = oc.post(g, json={"label": "vc_c", "exclusiveGroup": "vcluster", "members": {"ids": ["x1000c0s3b0n0"]}})
    assert clash2.status_code == 409
    assert oc.post(g + "/vc_b/members", json={"id": "x1000c0s4b0n0"}).status_code == 201
    assert oc.get(g + "/vc_a").json()["exclusiveGroup"] == "vcluster"
    # a plain group may overlap
    assert oc.post(g, json={"label": "plain", "members": {"ids": ["x1000c0s3b0n0"]}}).status_code == 201


def test_put_members_is_openchami_only(oc, csm):
    assert oc.post("/hsm/v2/groups", json={"label": "bulk"}).status_code == 201
    put = oc.put("/hsm/v2/groups/bulk/members", json={"group": "bulk", "ids": ["x1000c0s0b0n0", "x1000c0s5b0n0"]})
    assert put.status_code == 201
    assert put.json() == [{"URI": "/hsm/v2/groups/bulk/members/x1000c0s0b0n0"},
                          {"URI": "/hsm/v2/groups/bulk/members/x1000c0s5b0n0"}]
    assert oc.put("/hsm/v2/groups/bulk/members", json={"ids": ["x1000c0s5b0n0"]}).status_code == 201
    assert oc.get("/hsm/v2/groups/bulk/members").json() == {"ids": ["x1000c0s5b0n0"]}
    assert oc.put("/hsm/v2/groups/bulk/members", json={"ids": []}).status_code == 204
    bad = oc.put("/hsm/v2/groups/bulk/members", json={"ids": ["nid1"]})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("invalid xname IDs")
    cray = csm.put("/apis/smd/hsm/v2/groups/bulk/members", json={"ids": ["x1000c0s5b0n0"]})
    assert cray.status_code == 405  # Cray-HPE/hms-smd has no bulk member route


def test_same_data_on_both_faces(oc, csm):
    assert oc.post("/hsm/v2/groups", json={"label": "shared", "members": {"ids": ["x3000c0s0b0n0"]}}).status_code == 201
    assert csm.get("/apis/smd/hsm/v2/groups/shared").json()["members"]["ids"] == ["x3000c0s0b0n0"]
    assert csm.post("/apis/smd/hsm/v2/groups/shared/members", json={"id": "x3000c0s1b0n0"}).json() == \
        [{"URI": "/hsm/v2/groups/shared/members/x3000c0s1b0n0"}]
    assert oc.get("/hsm/v2/groups/shared/members").json() == {"ids": ["x3000c0s0b0n0", "x3000c0s1b0n0"]}


def test_partitions_and_memberships(oc):
    assert oc.post("/hsm/v2/partitions", json={"name": "p1", "members": {"ids": ["x1000c0s4b0n0"]}}).status_code == 201
    assert oc.post("/hsm/v2/partitions", json={"name": "blue"}).status_code == 400  # p# or p#.#
    assert oc.post("/hsm/v2/partitions", json={"name": "p2", "members": {"ids": ["x1000c0s4b0n0"]}}).status_code == 409
    assert oc.post("/hsm/v2/partitions/p1/members", json={"id": "x1000c0s4b0n0"}).status_code == 409
    m = oc.get("/hsm/v2/memberships/x1000c0s4b0n0").json()
    assert m["partitionName"] == "p1" and "vc_b" in m["groupLabels"]
    assert oc.get("/hsm/v2/memberships/x1000c0s5b0n0").json()["partitionName"] == ""
    assert oc.get("/hsm/v2/memberships/x1000c9s9b0n0").status_code == 404
    all_m = oc.get("/hsm/v2/memberships?partition=p1").json()
    assert [x["id"] for x in all_m] == ["x1000c0s4b0n0"]
    assert ids(oc.get("/hsm/v2/State/Components?partition=NULL&role=service")) == ["x3000c0s0b0n0", "x3000c0s1b0n0"]
    both = oc.get("/hsm/v2/State/Components?group=a&group=b&partition=p1")
    assert both.status_code == 400


def test_partition_and_group_patch_and_member_delete(oc):
    p, g = "/hsm/v2/partitions", "/hsm/v2/groups"
    assert oc.post(p, json={"name": "p7", "members": {"ids": ["x1000c0s5b0n0"]}}).status_code == 201
    assert oc.patch(p + "/p7", json={"description": "rack 7", "tags": ["Hot"]}).status_code == 204
    assert oc.get(p + "/p7").json() == {"name": "p7", "description": "rack 7", "tags": ["hot"],
                                        "members": {"ids": ["x1000c0s5b0n0"]}}
    assert oc.patch(p + "/p7", json={"tags": ["bad tag!"]}).json()["detail"] == "Invalid tag."
    assert oc.patch(p + "/p8", json={"description": "x"}).json()["detail"] == "no such partition."
    assert oc.patch(p + "/p7", json={"other": 1}).status_code == 400
    rm = oc.delete(p + "/p7/members/x1000c0s5b0n0")
    assert rm.status_code == 200 and rm.json() == {"code": 0, "message": "deleted 1 entry"}
    again = oc.delete(p + "/p7/members/x1000c0s5b0n0")
    assert again.status_code == 404 and again.json()["detail"] == "partition has no such member."
    assert oc.delete(p + "/p8/members/x1000c0s5b0n0").json()["detail"] == "No such partition: p8"
    assert oc.delete(p + "/p7").status_code == 200
    assert oc.delete(p + "/p7").json()["detail"] == "no such partition."

    assert oc.post(g, json={"label": "tagme"}).status_code == 201
    assert oc.patch(g + "/tagme", json={"tags": ["A", "b"]}).status_code == 204
    assert oc.get(g + "/tagme").json()["tags"] == ["a", "b"]
    assert oc.patch(g + "/nosuch", json={"tags": ["a"]}).json()["detail"] == "no such group."
    assert oc.delete(g + "/nosuch/members/x1000c0s5b0n0").json()["detail"] == "No such group: nosuch"
    assert oc.delete(g + "/tagme").status_code == 200


def test_component_writes(oc):
    c = "/hsm/v2/State/Components"
    assert oc.post(c, json={"Components": [{"ID": "x5000c0s0b0n0", "State": "On", "NID": 5000}]}).status_code == 204
    comp = oc.get(c + "/x5000c0s0b0n0").json()
    assert comp["Role"] == "Compute" and comp["Enabled"] is True and comp["Type"] == "Node"
    # without Force an existing component is not overwritten; with it, State changes
    oc.post(c, json={"Components": [{"ID": "x5000c0s0b0n0", "State": "Ready"}]})
    assert oc.get(c + "/x5000c0s0b0n0").json()["State"] == "On"
    oc.post(c, json={"Components": [{"ID": "x5000c0s0b0n0", "State": "Ready"}], "Force": True})
    assert oc.get(c + "/x5000c0s0b0n0").json()["State"] == "Ready"
    assert oc.patch(c + "/x5000c0s0b0n0/StateData", json={"State": "standby", "Flag": "alert"}).status_code == 204
    assert oc.get(c + "/x5000c0s0b0n0").json()["Flag"] == "Alert"
    assert oc.patch(c + "/BulkRole", json={"ComponentIDs": ["x5000c0s0b0n0"], "Role": "Application",
                                           "SubRole": "UAN"}).status_code == 204
    assert oc.get(c + "/ByNID/5000").json()["SubRole"] == "UAN"
    assert oc.patch(c + "/x5000c0s0b0n0/Enabled", json={"Enabled": False}).status_code == 204
    assert ids(oc.get(c + "?enabled=false")) == ["x5000c0s0b0n0"]
    q = oc.post(c + "/Query", json={"ComponentIDs": ["x5000c0s0b0n0", "x1000c0s0b0n0"], "nidonly": True}).json()
    assert q == {"Components": [{"ID": "x1000c0s0b0n0", "Type": "Node", "NID": 1},
                                {"ID": "x5000c0s0b0n0", "Type": "Node", "NID": 5000}]}
    assert ids(oc.post(c + "/ByNID/Query", json={"NIDRanges": ["1-2", "5000"]})) == \
        ["x1000c0s0b0n0", "x1000c0s1b0n0", "x5000c0s0b0n0"]
    assert ids(oc.get(c + "/Query/x1000c0s1")) == ["x1000c0s1b0n0"]  # not x1000c0s10..
    assert oc.delete(c + "/x5000c0s0b0n0").json() == {"code": 0, "message": "deleted 1 entry"}
    assert oc.get(c + "/x5000c0s0b0n0").status_code == 404
    assert oc.put(c + "/x5000c0s1b0n0", json={"Component": {"State": "Off", "Role": "Storage"}}).status_code == 204
    assert oc.get(c + "/x5000c0s1b0n0").json()["Role"] == "Storage"


def test_ethernet_interfaces(oc, site):
    e = "/hsm/v2/Inventory/EthernetInterfaces"
    lab_nodes = oc.get(e + "?ComponentID=x1000c0s0b0n0").json()
    assert lab_nodes[0]["Description"] == "nid000001" and lab_nodes[0]["IPAddresses"] == \
        [{"IPAddress": "10.252.1.1", "Network": "NMN"}]
    created = oc.post(e, json={"MACAddress": "9A-99-99-99-99-99", "ComponentID": "x1000c0s1b0n0",
                               "IPAddresses": [{"IPAddress": "99.9.9.9", "Network": "HSN"}]})
    assert created.status_code == 201
    assert created.json() == {"URI": "/hsm/v2/Inventory/EthernetInterfaces/9a9999999999"}  # an object, not a list
    assert oc.post(e, json={"MACAddress": "9a:99:99:99:99:99"}).status_code == 409
    assert [i["ID"] for i in oc.get(e + "?IPAddress=99.9.9.9").json()] == ["9a9999999999"]
    assert [i["ID"] for i in oc.get(e + "?network=HSN").json()] == ["9a9999999999"]
    assert oc.get(e + "?ComponentID=BADID").status_code == 400
    patched = oc.patch(e + "/9a9999999999", json={"Description": "hsn0"})
    assert patched.status_code == 200 and patched.json()["Description"] == "hsn0"
    assert oc.delete(e + "/9a9999999999").status_code == 200
    assert oc.get(e + "/9a9999999999").status_code == 404
    public = site.session("openchami", token=False)
    assert public.get(e).status_code == 200  # the collection GET is public on OpenCHAMI
    assert public.get(e + "/" + lab_nodes[0]["ID"]).status_code == 401  # one item is not


def test_trailing_slashes_are_tolerated(oc):
    assert oc.get("/hsm/v2/groups/").status_code == 200
    assert oc.get("/hsm/v2/Inventory/EthernetInterfaces/").status_code == 200
    assert oc.get(SMD_PREFIX["openchami"] + "/service/liveness").status_code == 204
