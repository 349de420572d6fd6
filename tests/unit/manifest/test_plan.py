"""Node choice: stable, from the free pool, refusing what the site cannot give."""
import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils._plan import PlanError, choose_nodes, make_plan


def comp(i, role="Compute", state="Ready", **kw):
    c = {"ID": "x1000c0s%db0n0" % i, "Type": "Node", "State": state, "Flag": "OK", "Enabled": True, "Role": role,
         "NID": i + 1, "Arch": "X86"}
    c.update(kw)
    return c


COMPONENTS = [comp(i) for i in range(6)] + [comp(10, role="Service", NID=100001)] + [
    {"ID": "x1000c0s0b0", "Type": "NodeBMC", "State": "Ready"}]
MANIFEST = {"name": "eiger", "nodes": {"service": {"count": 1, "select": {"role": "Service"}},
                                       "compute": {"count": 2, "select": {"role": "Compute"}}},
            "image": {"name": "i", "tag": "t"}, "vservices": []}
VC = {"label": "other", "exclusiveGroup": "vcluster", "members": {"ids": ["x1000c0s0b0n0"]}}


def test_free_nodes_in_nid_order_and_others_excluded():
    memberships = [{"id": "x1000c0s0b0n0", "groupLabels": ["other"], "partitionName": ""}]
    chosen, current = choose_nodes(MANIFEST, COMPONENTS, memberships, [VC])
    assert chosen == {"service": ["x1000c0s10b0n0"], "compute": ["x1000c0s1b0n0", "x1000c0s2b0n0"]}
    assert current == []


def test_existing_members_are_kept():
    own = {"label": "eiger", "exclusiveGroup": "vcluster"}
    memberships = [{"id": "x1000c0s4b0n0", "groupLabels": ["eiger"]}, {"id": "x1000c0s5b0n0", "groupLabels": ["eiger"]}]
    plan = make_plan(MANIFEST, COMPONENTS, memberships, [own])
    assert plan["node_groups"]["compute"] == ["x1000c0s4b0n0", "x1000c0s5b0n0"]
    assert plan["add"] == ["x1000c0s10b0n0"] and plan["remove"] == [] and plan["label_exists"]


def test_shrinking_releases_highest():
    m = dict(MANIFEST, nodes=dict(MANIFEST["nodes"], compute={"count": 1, "select": {"role": "Compute"}}))
    memberships = [{"id": "x1000c0s4b0n0", "groupLabels": ["eiger"]}, {"id": "x1000c0s5b0n0", "groupLabels": ["eiger"]}]
    plan = make_plan(m, COMPONENTS, memberships, [{"label": "eiger", "exclusiveGroup": "vcluster"}])
    assert plan["node_groups"]["compute"] == ["x1000c0s4b0n0"] and plan["remove"] == ["x1000c0s5b0n0"]


def test_unhealthy_nodes_are_not_picked_and_shortage_is_explained():
    comps = [comp(0, state="Standby"), comp(1, Flag="Alert"), comp(2, Enabled=False), comp(3)]
    m = dict(MANIFEST, nodes={"compute": {"count": 2, "select": {"role": "Compute", "arch": "X86"}}})
    with pytest.raises(PlanError, match=r"nodes.compute: needs 2 nodes with arch=X86 role=Compute, 0 kept and only 1 free"):
        choose_nodes(m, comps, [], [])


def test_explicit_nodes_checked():
    m = dict(MANIFEST, nodes={"compute": {"nodes": ["x1000c0s0b0n0", "x9c0s0b0n0"]}})
    with pytest.raises(PlanError) as err:
        choose_nodes(m, COMPONENTS, [{"id": "x1000c0s0b0n0", "groupLabels": ["other"]}], [VC])
    assert "x1000c0s0b0n0 belongs to vCluster other" in str(err.value)
    assert "x9c0s0b0n0 is not a node component" in str(err.value)


def test_non_vcluster_groups_do_not_block():
    memberships = [{"id": "x1000c0s1b0n0", "groupLabels": ["compute_pool", "ssd"]}]
    chosen = choose_nodes(MANIFEST, COMPONENTS, memberships, [{"label": "compute_pool"}, {"label": "ssd"}])[0]
    assert chosen["compute"] == ["x1000c0s0b0n0", "x1000c0s1b0n0"]


def test_each_node_group_boots_its_own_image_and_kernel_parameters():
    arm = {"name": "gh200", "tag": "2026.11"}
    m = dict(MANIFEST, kernel_params="console=ttyS0",
             nodes=dict(MANIFEST["nodes"], compute={"count": 2, "select": {"role": "Compute"}, "image": arm,
                                                    "kernel_params": "iommu=pt"}))
    plan = make_plan(m, COMPONENTS, [], [])
    by_group = dict((g["node_group"], g) for g in plan["boot_groups"])
    assert by_group["compute"] == {"node_group": "compute", "nodes": ["x1000c0s0b0n0", "x1000c0s1b0n0"],
                                   "image": arm, "kernel_params": "iommu=pt"}
    assert by_group["service"]["image"] == {"name": "i", "tag": "t"}
    assert by_group["service"]["kernel_params"] == "console=ttyS0"
    node = [n for n in plan["nodes"] if n["xname"] == "x1000c0s10b0n0"][0]
    assert node["image"] == {"name": "i", "tag": "t"} and node["kernel_params"] == "console=ttyS0"


def test_empty_node_groups_have_no_boot_entry():
    m = dict(MANIFEST, nodes=dict(MANIFEST["nodes"], login={"count": 0, "select": {"role": "Service"}}))
    plan = make_plan(m, COMPONENTS, [], [])
    assert [g["node_group"] for g in plan["boot_groups"]] == ["compute", "service"]
