#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: vcluster_plan
short_description: Work out which nodes a vCluster gets on a site, and what must change
version_added: 0.1.0
description:
  - Reads the site's nodes, labels and memberships from SMD (three bulk calls, whatever the size of the machine)
    and decides, for a manifest validated by M(hpc.vcluster.vcluster_manifest), which nodes each node group gets.
  - Node choice is stable. Nodes the vCluster already has and that still match are kept; missing ones are taken from
    the free pool (nodes in no other vCluster label, enabled, not C(Standby)/C(Empty)/C(Halt), flag not C(Alert))
    in NID order; when a group shrinks, the highest NIDs are released.
  - A vCluster label is an SMD group created in the exclusive group O(exclusive_group), so a node can belong to one
    vCluster only; other labels (pools, features) do not make a node busy.
  - Fails, naming the node group and what is missing, when the site cannot give the manifest what it asks.
  - Never changes anything; the plan is what M(hpc.vcluster.node_group) and the deploy playbook then apply.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
options:
  manifest:
    description:
      - The validated manifest, as returned by M(hpc.vcluster.vcluster_manifest) in its C(manifest) key.
    type: dict
    required: true
  exclusive_group:
    description:
      - The SMD exclusive group every vCluster label is created in.
    type: str
    default: vcluster
  site_state:
    description:
      - Also read what the site holds for the vCluster (its label's members, the members' boot parameters and power
        states, its VLAN, with four more reads) and return its hash as RV(site_fingerprint).
      - The deploy compares it with the latest release's (M(hpc.vcluster.vcluster_release) records it) to skip the
        label, boot, network and power steps of an unchanged re-run.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Read-only; the result is the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller (C(delegate_to=localhost)).
seealso:
  - module: hpc.vcluster.vcluster_manifest
  - module: hpc.vcluster.node_group
"""

EXAMPLES = r"""
- name: Validate the manifest
  hpc.vcluster.vcluster_manifest:
    path: vclusters/eiger.yml
  register: vcluster

- name: Plan the nodes
  hpc.vcluster.vcluster_plan:
    manifest: "{{ vcluster.manifest }}"
  register: plan

- name: Label the chosen nodes
  hpc.vcluster.node_group:
    label: "{{ plan.plan.label }}"
    exclusive_group: "{{ plan.plan.exclusive_group }}"
    members: "{{ plan.plan.members }}"
"""

RETURN = r"""
plan:
  description: What the vCluster gets.
  returned: success
  type: dict
  contains:
    label:
      description: The vCluster's label.
      type: str
      sample: eiger
    label_exists:
      description: Whether the label already exists on the site.
      type: bool
    exclusive_group:
      description: The exclusive group the label lives in.
      type: str
    node_groups:
      description: Chosen xnames per node group.
      type: dict
      sample: {service: [x3000c0s0b0n0], compute: [x1000c0s0b0n0, x1000c0s1b0n0]}
    members:
      description: All chosen xnames.
      type: list
      elements: str
    add:
      description: Nodes that join the label.
      type: list
      elements: str
    remove:
      description: Nodes that leave the label.
      type: list
      elements: str
    nodes:
      description: Each member with its node group, NID, role, state, and the image and kernel parameters it is to boot.
      type: list
      elements: dict
    boot_groups:
      description:
        - One entry per node group that has nodes, as the boot step takes them (C(node_group), C(nodes), C(image),
          C(kernel_params)); a node group's own image and kernel parameters replace the vCluster's.
      type: list
      elements: dict
    image:
      description: The manifest's image.
      type: dict
    network:
      description: The manifest's network (VLAN or PKEY), or null.
      type: dict
    storage:
      description: The manifest's storage mounts.
      type: list
      elements: dict
    vservices:
      description: The vServices in apply order (name, version, node groups, source).
      type: list
      elements: dict
site_fingerprint:
  description:
    - With O(site_state), C(sha256:<hex>) of what the site holds for the vCluster now (label members, the members' boot
      parameters and power states, the VLAN and the nodes on it); empty when it cannot be read as one hash (a PKey
      segment) or O(site_state) is false.
  returned: success
  type: str
  sample: "sha256:3f1c..."
site:
  description: The site the plan was made for (no secrets).
  returned: success
  type: dict
  sample: {kind: openchami, name: lab, api_url: "https://127.0.0.1:28443"}
"""

from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._plan import PlanError, make_plan
from ansible_collections.hpc.vcluster.plugins.module_utils._site_state import fingerprint, site_state


def main():
    module = SiteModule(
        argument_spec=dict(
            manifest=dict(type="dict", required=True),
            exclusive_group=dict(type="str", default="vcluster"),
            site_state=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
        access_control=True,
    )

    def work():
        manifest = module.params["manifest"]
        for key in ("name", "nodes", "image"):
            if key not in manifest:
                module.fail_json(msg="manifest.%s is missing: pass the manifest returned by hpc.vcluster.vcluster_manifest" % key)
        module.access.check_labels([manifest["name"]])
        site = module.clients.site
        if manifest.get("site") and manifest["site"] != site.name:
            module.fail_json(msg="manifest.site: vCluster %s is for site %s, and this play's site is %s (site_name); "
                                 "give the play that site's options" % (manifest["name"], manifest["site"], site.name))
        smd = module.clients.smd
        components = smd.components(type="Node")
        memberships = smd.memberships(type="Node")
        groups = smd.groups()
        try:
            plan = make_plan(manifest, components, memberships, groups, module.params["exclusive_group"])
        except PlanError as exc:
            module.fail_json(msg="cannot place vCluster %s on site %s: %s" % (manifest["name"], module.clients.site.name, exc))
        site_fingerprint = ""
        if module.params["site_state"]:
            group = next((g for g in groups if g.get("label") == manifest["name"]), None)
            site_fingerprint = fingerprint(site_state(module.clients, manifest["name"], group, plan["members"],
                                                      manifest.get("network")))
        return dict(changed=False, plan=plan, site=module.clients.site.describe(), site_fingerprint=site_fingerprint)

    module.run(work)


if __name__ == "__main__":
    main()
