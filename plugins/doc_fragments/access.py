# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Access control options (which labels an operator may manage), shared by the layer-1 modules."""
from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  allowed_labels:
    description:
      - Labels (SMD groups) this operator may manage. An action on any other label, or on a node that is a member
        of none of them, fails before anything is changed.
      - Use it to limit an AWX job template, or an operator, to some vClusters.
      - When O(rbac_from_token) is also set, an action must be allowed by both.
      - If not set, the value of the E(VCLUSTER_ALLOWED_LABELS) environment variable (comma separated) is used.
        Not set or empty means no allow-list.
      - Every module of the C(hpc.vcluster.site) action group takes this option, so that C(module_defaults) can
        set it once for the group; modules that do not act on labels accept and ignore it.
    type: list
    elements: str
  rbac_from_token:
    description:
      - Take the labels this operator may manage from the site token, as Manta does on CSM. The token's Keycloak
        realm roles (C(realm_access.roles), or a top-level C(roles) claim) name them.
      - The role V(pa_admin) (or V(admin)) allows every label; C(offline_access), C(uma_authorization) and
        C(default-roles-*) are ignored.
      - A token that is not a JWT is refused rather than trusted.
      - If not set, E(VCLUSTER_RBAC_FROM_TOKEN) is used, then V(false).
    type: bool
"""

    # Modules that act on nodes or labels: how the targets are named.
    TARGETS = r"""
options:
  nodes:
    description:
      - Nodes to act on, as xnames (V(x1000c0s0b0n0)), bracket ranges of xnames (V(x1000c0s[0-3]b0n0)),
        NIDs (V(12)) or NID host names (V(nid000012)).
      - With O(label), these nodes, each of which must be a member of the label (in check mode, of
        O(planned_members) when given); the access check is then the label's. One of O(nodes) and O(label) is required.
    type: list
    elements: str
  label:
    description:
      - Act on every current member of this label (SMD group), or, with O(nodes), on those of its members.
      - With an allow-list (O(allowed_labels), O(rbac_from_token)), naming the label beside O(nodes) checks the label
        rather than each node's current labels, so a plan (check mode with O(planned_members)) can be shown for nodes
        that are not in the label yet.
    type: str
  planned_members:
    description:
      - With O(label), in check mode only, the members the label will have when the task really runs (the C(members)
        of M(hpc.vcluster.vcluster_plan)), instead of its current ones, so that a plan can be shown for a label that
        does not exist yet or is about to grow or shrink. Outside check mode the label's members are read as always.
    type: list
    elements: str
"""
