#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: node_group_info
short_description: List labels (SMD groups) with their members, and the free nodes to carve vClusters from
version_added: "0.1.0"
description:
  - Lists labels with their members, and the nodes that are free, that is in no label of an exclusive group (the
    labels of vClusters), filtered by role, sub-role, architecture, state or class.
  - Three bulk SMD calls whatever the size of the machine (groups, components, memberships), never one per node.
  - Works the same on OpenCHAMI and CSM.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.info
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
attributes:
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller.
options:
  labels:
    description:
      - Labels to return. All labels when not given.
      - With access control (O(allowed_labels), O(rbac_from_token)) only the labels the operator may manage are
        returned, and asking for another one is an error.
    type: list
    elements: str
  exclusive_group:
    description:
      - The exclusive group whose labels make a node taken, for example V(vcluster).
      - When not given, a node in a label of any exclusive group is taken.
    type: str
  free:
    description:
      - Whether to compute the free nodes.
    type: bool
    default: true
  role:
    description:
      - Only free nodes with one of these SMD roles (V(Compute), V(Service), V(Application), ...).
    type: list
    elements: str
  subrole:
    description:
      - Only free nodes with one of these SMD sub-roles.
    type: list
    elements: str
  arch:
    description:
      - Only free nodes of one of these architectures (V(X86), V(ARM), V(Other)).
    type: list
    elements: str
  node_state:
    description:
      - Only free nodes in one of these SMD states (V(Ready), V(On), V(Off), V(Standby), ...).
    type: list
    elements: str
  node_class:
    description:
      - Only free nodes of one of these SMD classes (V(River), V(Mountain), V(Hill)).
    type: list
    elements: str
  enabled:
    description:
      - Only free nodes whose SMD C(Enabled) flag has this value.
    type: bool
seealso:
  - module: hpc.vcluster.node_group
"""

EXAMPLES = r"""
- name: Which free X86 compute nodes can I take?
  hpc.vcluster.node_group_info:
    exclusive_group: vcluster
    role: [Compute]
    arch: [X86]
    node_state: [Ready, "Off"]
  delegate_to: localhost
  register: pool

- name: Take the first two of them
  hpc.vcluster.node_group:
    label: vc_blue
    exclusive_group: vcluster
    members: "{{ pool.free_nodes[:2] | map(attribute='xname') | list }}"
  delegate_to: localhost

- name: Members of one label
  hpc.vcluster.node_group_info:
    labels: [vc_blue]
    free: false
  delegate_to: localhost
  register: blue
"""

RETURN = r"""
groups:
  description: The labels, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    label:
      description: The label.
      type: str
      sample: vc_blue
    description:
      description: Its description.
      type: str
      sample: vCluster blue
    tags:
      description: Its tags.
      type: list
      elements: str
      sample: [vcluster]
    exclusive_group:
      description: Its exclusive group, V("") when none.
      type: str
      sample: vcluster
    members:
      description: Its members, sorted.
      type: list
      elements: str
      sample: [x1000c0s0b0n0]
free_nodes:
  description: Nodes in no label of an exclusive group (O(exclusive_group)), matching the filters, sorted by NID.
  returned: always
  type: list
  elements: dict
  contains:
    xname:
      description: The node's xname.
      type: str
      sample: x1000c0s2b0n0
    nid:
      description: Its NID, when SMD has one.
      type: int
      sample: 3
    role:
      description: SMD role.
      type: str
      sample: Compute
    subrole:
      description: SMD sub-role.
      type: str
      sample: ""
    arch:
      description: Architecture.
      type: str
      sample: X86
    state:
      description: SMD state.
      type: str
      sample: Ready
    flag:
      description: SMD flag.
      type: str
      sample: OK
    enabled:
      description: SMD C(Enabled) flag (true when SMD leaves it out).
      type: bool
      sample: true
    class:
      description: SMD class.
      type: str
      sample: Mountain
    labels:
      description: Labels (of no exclusive group) the node is in.
      type: list
      elements: str
      sample: [compute]
free_xnames:
  description: The xnames of RV(free_nodes), in the same order.
  returned: always
  type: list
  elements: str
  sample: [x1000c0s2b0n0, x1000c0s3b0n0]
"""

from ansible_collections.hpc.vcluster.plugins.module_utils._labels import group_view
from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule


def run_module(module):
    params = module.params
    smd = module.clients.smd
    access = module.access
    wanted = [label.lower() for label in params["labels"]] if params["labels"] else None
    if wanted and access.restricted:
        access.check_labels(wanted)
    all_groups = smd.groups()
    views = [group_view(g) for g in all_groups]
    shown = [v for v in views if (wanted is None or v["label"] in wanted) and access.allows(v["label"])]
    result = {"changed": False, "groups": sorted(shown, key=lambda v: v["label"]), "free_nodes": [], "free_xnames": []}
    if not params["free"]:
        return result

    exclusive = (params["exclusive_group"] or "").lower()
    taking = set(v["label"] for v in views
                 if v["exclusive_group"] and (not exclusive or v["exclusive_group"] == exclusive))
    taken = set()
    for view in views:
        if view["label"] in taking:
            taken.update(view["members"])
    plain_labels = {}
    for view in views:
        if view["label"] not in taking:
            for xname in view["members"]:
                plain_labels.setdefault(xname, []).append(view["label"])
    filters = {"type": "Node", "role": params["role"], "subrole": params["subrole"], "arch": params["arch"],
               "state": params["node_state"], "class": params["node_class"]}
    if params["enabled"] is not None:
        filters["enabled"] = params["enabled"]
    free = []
    for comp in smd.components(**filters):
        xname = comp.get("ID")
        if xname in taken:
            continue
        free.append({
            "xname": xname,
            "nid": comp.get("NID"),
            "role": comp.get("Role", ""),
            "subrole": comp.get("SubRole", ""),
            "arch": comp.get("Arch", ""),
            "state": comp.get("State", ""),
            "flag": comp.get("Flag", ""),
            "enabled": comp.get("Enabled", True),
            "class": comp.get("Class", ""),
            "labels": sorted(plain_labels.get(xname, [])),
        })
    free.sort(key=lambda n: (n["nid"] is None, n["nid"] or 0, n["xname"]))
    result["free_nodes"] = free
    result["free_xnames"] = [n["xname"] for n in free]
    return result


def main():
    argument_spec = dict(
        labels=dict(type="list", elements="str"),
        exclusive_group=dict(type="str"),
        free=dict(type="bool", default=True),
        role=dict(type="list", elements="str"),
        subrole=dict(type="list", elements="str"),
        arch=dict(type="list", elements="str"),
        node_state=dict(type="list", elements="str"),
        node_class=dict(type="list", elements="str"),
        enabled=dict(type="bool"),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True)
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
