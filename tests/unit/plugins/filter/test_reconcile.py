# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hpc.vcluster.vcluster_reconcile: who joins and who leaves a running vCluster (docs/reconcile.md)."""
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.vcluster.plugins.filter.reconcile import vcluster_reconcile
from ansible_collections.hpc.vcluster.plugins.module_utils._plan import make_plan

S = "x3000c0s1b0n0"
C = ["x1000c0s%db0n0" % i for i in range(6)]
IMAGE = {"name": "stack-node", "tag": "1"}


def manifest(compute):
    return {"name": "stack", "image": IMAGE, "nodes": {"service": {"nodes": [S]}, "compute": compute}}


def site(label):
    components = [{"ID": x, "Type": "Node", "NID": i + 1, "Role": "Compute", "State": "Ready"} for i, x in enumerate(C)]
    components.append({"ID": S, "Type": "Node", "NID": 100, "Role": "Application", "State": "Ready"})
    memberships = [{"id": x, "groupLabels": ["stack"] if x in label else []} for x in C + [S]]
    return components, memberships, [{"label": "stack", "exclusiveGroup": "vcluster"}]


def run(m, label, recorded, node_group="compute"):
    plan = make_plan(m, *site(label))
    return vcluster_reconcile(plan, m, recorded, node_group)


def record(compute):
    out = {S: {"node_group": "service", "release": 1}}
    out.update((x, {"node_group": "compute", "release": 1}) for x in compute)
    return out


def test_nothing_to_do_when_the_label_is_the_record():
    m = manifest({"nodes": C[4:6]})
    out = run(m, [S] + C[4:6], record(C[4:6]))
    assert not out["changed"] and out["joining"] == [] and out["leaving"] == {}
    assert out["plan"]["members"] == sorted([S] + C[4:6])


def test_a_node_added_by_hand_to_a_pinned_manifest_joins_the_compute_group():
    m = manifest({"nodes": C[4:6]})
    out = run(m, [S, C[3]] + C[4:6], record(C[4:6]))
    assert out["joining"] == [C[3]] and out["node_groups"] == {C[3]: "compute"} and out["leaving"] == {}
    plan = out["plan"]
    assert plan["members"] == sorted([S, C[3]] + C[4:6])
    assert plan["node_groups"]["compute"] == [C[3]] + C[4:6]
    assert [g["nodes"] for g in plan["boot_groups"] if g["node_group"] == "compute"] == [[C[3]] + C[4:6]]
    assert {n["xname"]: n["node_group"] for n in plan["nodes"]}[C[3]] == "compute"
    assert plan["add"] == [C[3]] and plan["remove"] == []


def test_a_second_run_after_the_join_is_recorded_changes_nothing():
    m = manifest({"nodes": C[4:6]})
    out = run(m, [S, C[3]] + C[4:6], record([C[3]] + C[4:6]))
    assert not out["changed"], out


def test_a_node_removed_by_hand_leaves_even_if_the_manifest_names_it():
    m = manifest({"nodes": C[4:6]})
    out = run(m, [S, C[4]], record(C[4:6]))
    assert out["joining"] == [] and list(out["leaving"]) == [C[5]] and "removed from the label" in out["leaving"][C[5]]
    assert out["plan"]["members"] == sorted([S, C[4]])


def test_a_lowered_count_makes_the_extra_nodes_leave():
    m = manifest({"count": 1})
    out = run(m, [S] + C[0:2], record(C[0:2]))
    assert out["leaving"] == {C[1]: "nodes.compute.count is 1"} and out["joining"] == []
    assert out["plan"]["node_groups"]["compute"] == [C[0]]


def test_a_joiner_must_fit_in_a_count():
    m = manifest({"count": 2})
    with pytest.raises(AnsibleFilterError, match=r"nodes.compute.count is 2 .*x1000c0s2b0n0 cannot join"):
        run(m, [S] + C[0:3], record(C[0:2]))
    out = run(manifest({"count": 3}), [S] + C[0:3], record(C[0:2]))
    assert out["joining"] == [C[2]] and out["leaving"] == {}


def test_a_joiner_the_manifest_names_takes_that_node_group():
    m = manifest({"nodes": C[4:6]})
    m["nodes"]["service"] = {"nodes": [S, C[0]]}
    out = run(m, [S, C[0]] + C[4:6], record(C[4:6]))
    assert out["node_groups"] == {C[0]: "service"}


def test_no_record_no_reconcile():
    m = manifest({"nodes": C[4:6]})
    with pytest.raises(AnsibleFilterError, match="no release record .*deploy it first"):
        run(m, [S] + C[4:6], None)


def test_an_unknown_node_group_is_named():
    m = manifest({"nodes": C[4:6]})
    with pytest.raises(AnsibleFilterError, match="vcluster_reconcile_node_group: gpu is not a node group"):
        run(m, [S] + C[4:6], record(C[4:6]), node_group="gpu")


def test_a_joiner_without_a_node_group_is_an_error():
    m = manifest({"nodes": C[4:6]})
    with pytest.raises(AnsibleFilterError, match="set vcluster_reconcile_node_group"):
        run(m, [S, C[3]] + C[4:6], record(C[4:6]), node_group="")


def test_a_node_group_gone_from_the_manifest_leaves():
    m = manifest({"nodes": C[4:6]})
    recorded = record(C[4:6])
    recorded[C[3]] = {"node_group": "gpu", "release": 1}
    out = run(m, [S, C[3]] + C[4:6], recorded)
    assert "node group gpu is not in the manifest" in out["leaving"][C[3]]
