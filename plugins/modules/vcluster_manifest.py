#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: vcluster_manifest
short_description: Validate a vCluster manifest and put its vServices in order
version_added: 0.1.0
description:
  - Reads a vCluster manifest and validates it on the controller against the manifest's JSON Schema
    (C(schemas/vcluster.schema.json) in the collection), then against rules the schema cannot express
    (known vServices and their versions, references between node groups and vServices), then each vService's
    C(config) against its role's C(meta/argument_specs.yml).
  - Every problem is reported at once, each as the path of the offending field and what was expected,
    for example C(vservices[2].config.partitions) followed by what was expected.
  - Nothing on the site is read or changed; run it first, so that a bad manifest stops a deploy before any change.
  - Returns the manifest with defaults filled in and its vServices in the order they must be applied
    (the C(after) ordering declared by each role in C(meta/vservice.yml) and in the manifest).
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
options:
  path:
    description:
      - Path of the manifest file (YAML) on the controller. Relative paths are looked up like C(files) of the play.
      - Exactly one of O(path) and O(manifest) is required.
    type: path
  manifest:
    description:
      - The manifest's content, as a mapping.
    type: dict
attributes:
  check_mode:
    support: full
    description: Never changes anything.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
  platform:
    support: full
    platforms: controller
    description: Runs on the controller (an action plugin), where the manifest file and the collection's roles are.
  action:
    support: full
    description: Implemented as an action plugin.
seealso:
  - module: hpc.vcluster.vcluster_plan
notes:
  - The schema is documented in the collection's C(docs/manifest.md).
requirements:
  - jsonschema >= 4.18 (on the controller)
"""

EXAMPLES = r"""
- name: Validate the manifest before anything changes
  hpc.vcluster.vcluster_manifest:
    path: vclusters/eiger.yml
  register: vcluster

- name: Show the order vServices will be applied in
  ansible.builtin.debug:
    msg: "{{ vcluster.vservice_order }}"
"""

RETURN = r"""
manifest:
  description:
    - The validated manifest with defaults filled in.
    - C(vservices) is in apply order; each has its C(role) name, its C(vars) (the config keys with the role prefix,
      as the role's variables) and C(has_destroy) (the role has a C(tasks/destroy.yml) for the destroy playbook).
  returned: success
  type: dict
  sample:
    apiVersion: hpc.vcluster/v1
    name: eiger
    nodes: {compute: {count: 4, select: {role: Compute}}}
    image: {name: compute-base, tag: "2026.11"}
    boot: {method: bss, timeout: 600}
    vservices:
      - name: slurm
        version: "1.0"
        role: hpc.vcluster.slurm
        config: {partitions: [{name: normal}]}
        vars: {slurm_partitions: [{name: normal}]}
        nodes: [compute]
        has_destroy: true
digest:
  description:
    - sha256 of the manifest as written (its content as canonical JSON, before defaults are filled in), as
      C(sha256:<hex>). Release records carry it; two manifests with the same content have the same digest.
  returned: success
  type: str
  sample: "sha256:9f2c4e0b1d..."
masked:
  description:
    - The manifest as written, with every secret replaced by C(********) - a vService setting its role declares
      C(no_log), or whose name says it is one (password, secret, token, private key) - what a release record keeps.
  returned: success
  type: dict
vservice_order:
  description: Names of the vServices in the order they are applied.
  returned: success
  type: list
  elements: str
  sample: [slurm]
catalog:
  description: The vServices this collection provides, with their versions.
  returned: success
  type: dict
  sample: {slurm: {version: "1.0", description: "Slurm workload manager"}}
errors:
  description: Every problem found, each as the path of the field, a colon, and the problem.
  returned: failure
  type: list
  elements: str
  sample:
    - "name: 'Eiger' does not match ^[a-z][a-z0-9_]*$"
"""
