# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From a validated manifest and what the site says, which nodes a vCluster gets.

Pure functions over SMD data (components, memberships, groups), so the same plan comes
out on every site kind and a unit test can pin it down. Node choice is stable: nodes the
vCluster already has and that still match are kept, new ones are taken from the free
pool (in no other vCluster's exclusive label, healthy, enabled) in NID order, so that
re-running a deploy never reshuffles a cluster.
"""
from __future__ import annotations

# Every vCluster label is created in this exclusive group: a node can be in one vCluster only.
EXCLUSIVE_GROUP = "vcluster"
UNHEALTHY_STATES = frozenset(("Empty", "Unknown", "Standby", "Halt", "Populated"))

_SELECT_FIELDS = {"role": "Role", "subrole": "SubRole", "arch": "Arch", "class": "Class", "nettype": "NetType"}


class PlanError(ValueError):
    """The site cannot give the manifest what it asks; the message says what is missing."""


def describe_select(select):
    return " ".join("%s=%s" % (k, select[k]) for k in sorted(select)) or "any node"


def matches(component, select):
    for key, field in _SELECT_FIELDS.items():
        if key in select and str(component.get(field, "")).lower() != str(select[key]).lower():
            return False
    return True


def healthy(component):
    return (component.get("Enabled", True) is not False and component.get("State") not in UNHEALTHY_STATES
            and component.get("Flag", "OK") != "Alert")


def vcluster_labels(groups, exclusive_group=EXCLUSIVE_GROUP):
    """Labels that are vClusters: the groups created in the exclusive group."""
    return set(g["label"] for g in groups if g.get("exclusiveGroup") == exclusive_group)


def owners(memberships, labels):
    """xname -> the vCluster label it belongs to."""
    owned = {}
    for entry in memberships:
        for label in entry.get("groupLabels") or []:
            if label in labels:
                owned[entry["id"]] = label
    return owned


def _nid(component):
    try:
        return int(component.get("NID"))
    except (TypeError, ValueError):
        return 1 << 30


def choose_nodes(manifest, components, memberships, groups, exclusive_group=EXCLUSIVE_GROUP):
    """Nodes per node group: {group: [xnames]}; raises PlanError when the site cannot satisfy it."""
    label = manifest["name"]
    by_id = dict((c["ID"], c) for c in components if c.get("Type", "Node") == "Node")
    owned = owners(memberships, vcluster_labels(groups, exclusive_group) | {label})
    current = sorted(x for x, owner in owned.items() if owner == label)
    taken = set()
    chosen = {}
    problems = []
    # explicit node lists first, so that counted groups never take a node someone named
    for name in sorted(manifest["nodes"]):
        spec = manifest["nodes"][name]
        if "nodes" not in spec:
            continue
        picked = []
        for xname in spec["nodes"]:
            if xname not in by_id:
                problems.append("nodes.%s: %s is not a node component of this site" % (name, xname))
            elif owned.get(xname, label) != label:
                problems.append("nodes.%s: %s belongs to vCluster %s" % (name, xname, owned[xname]))
            elif xname in taken:
                problems.append("nodes.%s: %s is named in two node groups" % (name, xname))
            else:
                picked.append(xname)
                taken.add(xname)
        chosen[name] = picked
    for name in sorted(manifest["nodes"]):
        spec = manifest["nodes"][name]
        if "nodes" in spec:
            continue
        select, count = spec.get("select") or {}, spec["count"]
        keep = [x for x in current if x not in taken and matches(by_id.get(x, {}), select) and x in by_id][:count]
        taken.update(keep)
        need = count - len(keep)
        free = sorted((c for x, c in by_id.items()
                       if x not in owned and x not in taken and matches(c, select) and healthy(c)),
                      key=lambda c: (_nid(c), c["ID"]))
        if len(free) < need:
            problems.append("nodes.%s: needs %d node%s with %s, %d kept and only %d free" % (
                name, count, "" if count == 1 else "s", describe_select(select), len(keep), len(free)))
            continue
        new = [c["ID"] for c in free[:need]]
        taken.update(new)
        chosen[name] = sorted(keep + new, key=lambda x: (_nid(by_id[x]), x))
    if problems:
        raise PlanError("; ".join(problems))
    return chosen, current


def boot_by_group(manifest):
    """{node group: {image, kernel_params}}: a group's own image and kernel parameters, else the vCluster's."""
    if manifest.get("boot_by_group"):
        return manifest["boot_by_group"]
    return dict((group, {"image": spec.get("image") or manifest["image"],
                         "kernel_params": spec.get("kernel_params", manifest.get("kernel_params") or "")})
                for group, spec in manifest["nodes"].items())


def boot_groups(chosen, boots):
    """The node groups as the boot step takes them: one entry per group, with its nodes, image and parameters."""
    return [dict(node_group=group, nodes=chosen[group], image=boots[group]["image"],
                 kernel_params=boots[group]["kernel_params"]) for group in sorted(chosen) if chosen[group]]


def make_plan(manifest, components, memberships, groups, exclusive_group=EXCLUSIVE_GROUP):
    """The plan for a validated manifest: nodes, label changes, network, storage and vServices in order."""
    chosen, current = choose_nodes(manifest, components, memberships, groups, exclusive_group)
    members = sorted(set(x for xs in chosen.values() for x in xs))
    by_id = dict((c["ID"], c) for c in components)
    node_group_of = dict((x, g) for g, xs in chosen.items() for x in xs)
    label_exists = any(g["label"] == manifest["name"] for g in groups)
    boots = boot_by_group(manifest)
    return {
        "label": manifest["name"],
        "label_exists": label_exists,
        "exclusive_group": exclusive_group,
        "node_groups": chosen,
        "members": members,
        "add": sorted(set(members) - set(current)),
        "remove": sorted(set(current) - set(members)),
        "nodes": [dict(xname=x, node_group=node_group_of[x], nid=by_id[x].get("NID"), role=by_id[x].get("Role"),
                       state=by_id[x].get("State"), image=boots[node_group_of[x]]["image"],
                       kernel_params=boots[node_group_of[x]]["kernel_params"]) for x in members],
        "boot_groups": boot_groups(chosen, boots),
        "image": manifest["image"],
        "network": manifest.get("network"),
        "storage": manifest.get("storage") or [],
        "vservices": [dict(name=v["name"], version=v.get("version"), nodes=v.get("nodes"),
                           source=v.get("source")) for v in manifest.get("vservices") or []],
    }
