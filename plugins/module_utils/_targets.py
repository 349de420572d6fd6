# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which nodes a task acts on: a ``nodes:`` list or every member of a ``label:``.

Nodes are given as xnames (``x1000c0s0b0n0``), bracket ranges of xnames
(``x1000c0s[0-3]b0n0``), NIDs (``12``) or NID host names (``nid000012``). NIDs and host
names are turned into xnames with one SMD call whatever their number (NID ranges in the
body of ``POST /State/Components/ByNID/Query``), and checking that xnames are nodes is one
``POST /State/Components/Query``.
"""
from __future__ import annotations

import re

from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError
from ansible_collections.hpc.vcluster.plugins.module_utils._smd import XNAME_NODE_RE

_RANGE_RE = re.compile(r"\[([^\[\]]+)\]")
_NID_RE = re.compile(r"^(?:nid)?0*(\d+)$")
MAX_EXPANSION = 100000


def target_argument_spec():
    """``nodes`` and ``label``: exactly one of them names the nodes a task acts on."""
    return dict(
        nodes=dict(type="list", elements="str"),
        label=dict(type="str"),
        planned_members=dict(type="list", elements="str"),
    )


#: ``nodes`` with ``label``: those nodes, which must be members of the label (the access check is then the label's).
TARGET_MUTUALLY_EXCLUSIVE = []
TARGET_REQUIRED_ONE_OF = [("nodes", "label")]


def expand_ranges(text):
    """``x1000c0s[0-2,5]b0n0`` -> the four xnames; several bracket groups multiply."""
    match = _RANGE_RE.search(text)
    if not match:
        return [text]
    head, tail = text[:match.start()], text[match.end():]
    values = []
    for part in match.group(1).split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-", 1)
            if not (low.isdigit() and high.isdigit()) or int(low) > int(high):
                raise SiteError("bad range [%s] in %r" % (match.group(1), text))
            width = len(low) if low.startswith("0") and len(low) > 1 else 0
            values.extend(str(n).zfill(width) for n in range(int(low), int(high) + 1))
        elif part.isdigit():
            values.append(part)
        else:
            raise SiteError("bad range [%s] in %r" % (match.group(1), text))
        if len(values) > MAX_EXPANSION:
            raise SiteError("the range in %r names more than %d nodes" % (text, MAX_EXPANSION))
    result = []
    for value in values:
        result.extend(expand_ranges(head + value + tail))
    return result


def split_node_names(names):
    """(xnames, nids) from user input; raises SiteError naming what is neither."""
    xnames, nids, bad = set(), set(), []
    for raw in names or []:
        for name in expand_ranges(str(raw).strip()):
            lowered = name.lower()
            if XNAME_NODE_RE.match(lowered):
                xnames.add(lowered)
                continue
            match = _NID_RE.match(lowered)
            if match:
                nids.add(int(match.group(1)))
                continue
            bad.append(name)
    if bad:
        raise SiteError("not a node xname, NID or nidNNNNNN host name: %s" % ", ".join(sorted(bad)))
    return xnames, nids


def resolve_nodes(smd, names):
    """Sorted node xnames for ``names`` (xnames, ranges, NIDs); NIDs are looked up in SMD."""
    xnames, nids = split_node_names(names)
    if nids:
        found = {}
        for comp in smd.components_by_nids(nids):
            if comp.get("NID") is not None and comp.get("Type") == "Node" and int(comp["NID"]) in nids:
                found[int(comp["NID"])] = comp["ID"]
        missing = sorted(nids - set(found))
        if missing:
            raise SiteError("no node in SMD has NID %s" % ", ".join(str(n) for n in missing))
        xnames.update(found.values())
    return sorted(xnames)


def label_members(smd, label):
    """Sorted members of a label; SiteError when the label does not exist."""
    group = smd.group(label)
    if group is None:
        raise SiteError("label %r does not exist in SMD (create it with hpc.vcluster.node_group)" % label)
    return sorted((group.get("members") or {}).get("ids") or [])


def resolve_targets(smd, nodes=None, label=None, allow_empty=False):
    """The xnames a task acts on, from ``nodes`` or from ``label``'s members."""
    if label:
        xnames = label_members(smd, label)
        if not xnames and not allow_empty:
            raise SiteError("label %r has no members" % label)
        return xnames
    xnames = resolve_nodes(smd, nodes or [])
    if not xnames and not allow_empty:
        raise SiteError("no nodes given")
    return xnames


def unknown_nodes(smd, xnames):
    """The xnames that are not Node components in SMD (one bulk call)."""
    xnames = sorted(set(xnames or []))
    known = set(c.get("ID") for c in smd.components_by_ids(xnames, type="Node"))
    return sorted(set(xnames) - known)


def members_diff(before, after):
    """(added, removed) between two member collections, sorted."""
    before, after = set(before or []), set(after or [])
    return sorted(after - before), sorted(before - after)


def module_targets(module, allow_empty=False, missing_ok=False):
    """The xnames a module acts on, after the access check (a label's is checked before any call).

    ``label`` alone: its members. ``nodes`` alone: those nodes, each of which must be in an allowed
    label now. Both: those nodes, which must be members of the label, so the access check is the
    label's; in check mode the members are the plan's (``planned_members``), which lets
    ``deploy --check`` of a new vCluster under an allow-list show its boot and power steps.
    ``missing_ok``: a label that does not exist has no members (for ``state: absent``).
    """
    params = module.params
    smd = module.clients.smd
    label, nodes = params.get("label"), params.get("nodes")
    if not label:
        xnames = resolve_targets(smd, nodes=nodes, allow_empty=allow_empty)
        module.access.check_nodes(smd, xnames)
        return xnames
    module.access.check_labels([label])
    members = planned_members(module)
    if members is None:
        if (missing_ok or nodes is not None) and smd.group(label) is None:
            members = []
        else:
            members = resolve_targets(smd, label=label, allow_empty=allow_empty or nodes is not None)
    if nodes is None:
        return members
    xnames = resolve_nodes(smd, nodes)
    outside = sorted(set(xnames) - set(members))
    if outside:
        raise SiteError("not %s of label %r: %s" % ("planned members" if module.check_mode and params.get(
            "planned_members") is not None else "members", label, ", ".join(outside[:20]) + (
            " ..." if len(outside) > 20 else "")))
    if not xnames and not allow_empty:
        raise SiteError("no nodes given")
    return xnames


def planned_members(module):
    """In check mode, the label's members as the plan has them (``planned_members``), else None.

    A plan is shown before the label exists or changes (``deploy --check``): what a step
    would do is worked out for the nodes the label will have, not the ones it has now.
    """
    planned = module.params.get("planned_members")
    if not module.check_mode or planned is None:
        return None
    return resolve_nodes(module.clients.smd, planned) if planned else []
