# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile: which nodes join and leave a running vCluster, from its label, its last release and its manifest.

Pure functions (filter hpc.vcluster.vcluster_reconcile). The semantics (docs/reconcile.md):

* recorded: the nodes of the vCluster's latest release record (what was deployed);
* a label member that is not recorded was added by hand: it joins (its node group: the manifest's node
  group that names it, else the one the plan placed it in, else ``node_group``);
* a recorded node that is no longer in the label was removed by hand: it leaves;
* a node group with a count (no node list) that holds more recorded nodes than its count: the last
  ones (the plan's choice first) leave; a recorded node whose node group the manifest no longer has leaves;
* a joiner in a counted node group must fit in its count, or nothing is decided (an error naming the field).

A node group that names its nodes (``nodes: [...]``) is never shrunk by reconcile: an edit of that
list is deploy's business.
"""
from __future__ import annotations

from ansible_collections.hpc.vcluster.plugins.module_utils._plan import boot_by_group, boot_groups


class ReconcileError(ValueError):
    """The label, the record and the manifest do not say one thing; the message names the field to change."""


def _label_members(plan):
    members = set(plan.get("members") or [])
    return (members - set(plan.get("add") or [])) | set(plan.get("remove") or [])


def reconcile(plan, manifest, recorded, node_group="", label=None):
    """{'joining': [...], 'leaving': {xname: why}, 'plan': the plan of the vCluster after them, 'changed': bool}.

    ``plan``: hpc.vcluster.vcluster_plan's plan (with ``add`` and ``remove``); ``manifest``: the validated
    manifest; ``recorded``: the latest release's ``nodes`` ({xname: {node_group: ...}}); ``node_group``: the node
    group of a joiner the manifest does not place; ``label``: the label's members (default: from the plan).
    """
    if not isinstance(plan, dict) or "members" not in plan:
        raise ReconcileError("no plan: run the plan step first")
    if not isinstance(recorded, dict):
        raise ReconcileError("%s has no release record of its nodes: deploy it first (reconcile changes a running vCluster)"
                             % manifest.get("name", "the vCluster"))
    groups = manifest.get("nodes") or {}
    if node_group and node_group not in groups:
        raise ReconcileError("vcluster_reconcile_node_group: %s is not a node group of the manifest (it has %s)"
                             % (node_group, ", ".join(sorted(groups)) or "none"))
    label = set(label) if label is not None else _label_members(plan)
    rec = dict((x, (n or {}).get("node_group") if isinstance(n, dict) else n) for x, n in recorded.items())
    planned_group = dict((x, g) for g, xs in (plan.get("node_groups") or {}).items() for x in xs)
    named_group = dict((x, g) for g, spec in groups.items() for x in (spec.get("nodes") or []))

    leaving = {}
    for x in sorted(set(rec) - label):
        leaving[x] = "removed from the label %s" % manifest.get("name", "")
    for x in sorted(set(rec) & label):
        if rec[x] not in groups:
            leaving[x] = "its node group %s is not in the manifest any more" % rec[x]
    stay = dict((x, g) for x, g in rec.items() if x in label and x not in leaving)

    joining = {}
    problems = []
    for x in sorted(label - set(rec)):
        g = named_group.get(x) or planned_group.get(x) or node_group
        if not g:
            problems.append("%s was added to the label but the manifest does not place it: set vcluster_reconcile_node_group "
                            "(one of %s)" % (x, ", ".join(sorted(groups))))
        else:
            joining[x] = g

    for g, spec in sorted(groups.items()):
        if "nodes" in spec or "count" not in spec:
            continue
        count = int(spec["count"])
        mine = sorted((x for x, gx in stay.items() if gx == g),
                      key=lambda x: (x not in (plan.get("node_groups") or {}).get(g, []), x))
        for x in mine[count:]:
            leaving[x] = "nodes.%s.count is %d" % (g, count)
            del stay[x]
        new = sorted(x for x, gx in joining.items() if gx == g)
        if new and len(mine[:count]) + len(new) > count:
            problems.append("nodes.%s.count is %d and %d node%s recorded: %s cannot join (raise the count, or take %s out of the label)"
                            % (g, count, len(mine[:count]), "" if len(mine[:count]) == 1 else "s", ", ".join(new),
                               "it" if len(new) == 1 else "them"))
    if problems:
        raise ReconcileError("; ".join(problems))

    after = dict(stay)
    after.update(joining)
    members = sorted(after)
    by_group = dict((g, sorted(x for x, gx in after.items() if gx == g)) for g in sorted(groups))
    boots = boot_by_group(manifest)
    old_nodes = dict((n["xname"], n) for n in plan.get("nodes") or [])
    nodes = []
    for x in members:
        g = after[x]
        entry = dict(old_nodes.get(x) or {"xname": x, "nid": None, "role": None, "state": None})
        entry.update(node_group=g, image=boots[g]["image"], kernel_params=boots[g]["kernel_params"])
        nodes.append(entry)
    new_plan = dict(plan)
    new_plan.update(members=members, node_groups=by_group, nodes=nodes, boot_groups=boot_groups(by_group, boots),
                    add=sorted(joining), remove=sorted(leaving))
    return {"joining": sorted(joining), "node_groups": joining, "leaving": leaving, "plan": new_plan,
            "changed": bool(joining or leaving)}
