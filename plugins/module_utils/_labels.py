# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Labels (SMD groups) as the modules show them, and bulk membership look-ups."""
from __future__ import annotations


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
    """``{xname: set(labels)}`` for the nodes, from one ``/memberships`` call."""
    return dict((entry.get("id"), set(entry.get("groupLabels") or [])) for entry in smd.memberships_of(xnames))
