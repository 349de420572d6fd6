# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Labels (SMD groups) as the modules show them, and bulk membership look-ups."""
from __future__ import annotations

MEMBERSHIP_CHUNK = 100


def group_view(group):
    """A label as the modules return it (and as diffs show it); {} for no label."""
    if not group:
        return {}
    return {
        "label": group.get("label"),
        "description": group.get("description") or "",
        "tags": sorted(group.get("tags") or []),
        "exclusive_group": group.get("exclusiveGroup") or "",
        "members": sorted((group.get("members") or {}).get("ids") or []),
    }


def labels_of(smd, xnames):
    """``{xname: set(labels)}`` for the nodes, from bulk ``/memberships`` calls."""
    result = {}
    xnames = sorted(set(xnames))
    for start in range(0, len(xnames), MEMBERSHIP_CHUNK):
        for entry in smd.memberships(id=xnames[start:start + MEMBERSHIP_CHUNK]):
            result[entry.get("id")] = set(entry.get("groupLabels") or [])
    return result
