"""planned_members: in check mode, label steps work out their change for the nodes the plan gives the label.

``deploy --check`` on a vCluster that does not exist yet used to fail (boot_params: the label
does not exist); on a growing or shrinking one it showed the change for the old members.
"""
import pytest

from ansible_collections.hpc.vcluster.plugins.modules import boot_params, network_segment, power

from test_network_segment import FakeFabric
from vc_harness import FakeBss, FakePcs, FakeSmd, Failed, run

N0, N1, N2, N3 = ("x1000c0s%db0n0" % i for i in range(4))
IMAGE = {"name": "compute", "tag": "v1", "url_base": "http://s3/boot-images"}


def test_new_label_check_mode_uses_the_plan(rsps):
    FakeSmd(rsps)
    bss = FakeBss(rsps)
    args = {"label": "vc_new", "planned_members": [N1, N2], "image": IMAGE}
    res = run(boot_params.main, args, check=True)
    assert res["changed"] and res["changed_nodes"] == [N1, N2] and bss.writes == []
    pcs = FakePcs(rsps, power={N1: "off", N2: "on"})
    res = run(power.main, {"label": "vc_new", "planned_members": [N1, N2], "state": "on"}, check=True)
    assert res["changed"] and res["changed_nodes"] == [N1] and pcs.transitions == {}
    with pytest.raises(Failed, match="does not exist"):  # outside check mode the label is the truth
        run(boot_params.main, args)


def test_growing_and_shrinking_label_in_check_mode(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    FakeBss(rsps)
    grow = run(boot_params.main, {"label": "vc_blue", "planned_members": [N0, N1, N2], "image": IMAGE}, check=True)
    assert grow["nodes"] == [N0, N1, N2]
    shrink = run(boot_params.main, {"label": "vc_blue", "planned_members": [N0], "image": IMAGE}, check=True)
    assert shrink["nodes"] == [N0]


def test_network_segment_plans_the_new_members(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0])
    fabric = FakeFabric(rsps)
    res = run(network_segment.main, {"label": "vc_blue", "vlan": 300, "planned_members": [N0, N1]}, check=True)
    assert res["changed"] and fabric.writes == []
    assert res["diff"]["after"]["members"] == [N0, N1]
    new = run(network_segment.main, {"label": "vc_new", "vlan": 301, "planned_members": [N2]}, check=True)
    assert new["changed"] and new["diff"]["after"]["members"] == [N2] and fabric.writes == []


def test_nodes_of_a_label_under_an_allow_list(rsps):
    """``label`` with ``nodes``: the access check is the label's, so ``deploy --check`` of a new vCluster under an
    allow-list shows its boot and power steps; outside check mode the nodes must be members now."""
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0])
    bss = FakeBss(rsps)
    FakePcs(rsps, power={N1: "off", N2: "off"})
    allow = {"allowed_labels": ["vc_new", "vc_blue"]}
    new = dict(allow, label="vc_new", planned_members=[N1, N2], nodes=[N2], image=IMAGE)
    with pytest.raises(Failed, match="in no label the operator may manage"):  # the node check, as before
        run(boot_params.main, dict(allow, nodes=[N2], image=IMAGE), check=True)
    res = run(boot_params.main, new, check=True)
    assert res["changed"] and res["changed_nodes"] == [N2] and bss.writes == []
    res = run(power.main, dict(allow, label="vc_new", planned_members=[N1, N2], nodes=[N1], state="on"), check=True)
    assert res["changed_nodes"] == [N1]
    with pytest.raises(Failed, match=r"not planned members of label 'vc_new': x1000c0s3b0n0"):
        run(boot_params.main, dict(new, nodes=[N3]), check=True)
    with pytest.raises(Failed, match=r"not members of label 'vc_new': x1000c0s2b0n0"):  # real run: the label now
        run(boot_params.main, new)
    with pytest.raises(Failed, match="may not manage label vc_red"):
        run(boot_params.main, dict(new, label="vc_red"), check=True)
    res = run(boot_params.main, dict(allow, label="vc_blue", nodes=[N0], image=IMAGE))
    assert res["changed"] and res["nodes"] == [N0] and len(bss.writes) == 1
