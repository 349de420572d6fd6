#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: vservice_contract
short_description: Check a vService role's variables against the role's own contract
version_added: 0.2.0
description:
  - A vService role declares, in C(meta/vservice.yml), a C(config_schema) (a JSON Schema over its settings without the
    role prefix, with the keywords C(x-message), C(x-unique-by) and C(x-base64-min-bytes)) and, in
    C(meta/argument_specs.yml), which options are secrets (C(no_log)).
  - M(hpc.vcluster.vcluster_manifest) checks a manifest's C(config) against that contract on the controller before any
    change. This action checks the role's variables (as the play sets them, defaults included) against the same
    contract, for plays that use the role without a manifest; a role calls it first, in its C(tasks/validate.yml).
  - Messages name the variable and what is allowed, quote at most a short prefix of a value, and never quote a
    C(no_log) option's value.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
options:
  role_path:
    description:
      - The role's directory; inside the role, V({{ role_path }}).
    type: path
    required: true
  prefix:
    description:
      - The prefix of the role's variables. Defaults to the role directory's name and C(_).
    type: str
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
    description: Runs on the controller (an action plugin), where the role's files are.
  action:
    support: full
    description: Implemented as an action plugin.
seealso:
  - module: hpc.vcluster.vcluster_manifest
notes:
  - The contract format is documented in the collection's C(docs/manifest.md) (Role contracts).
requirements:
  - jsonschema >= 4.18 (on the controller)
"""

EXAMPLES = r"""
- name: Validate | the role's contract (meta/vservice.yml)
  hpc.vcluster.vservice_contract:
    role_path: "{{ role_path }}"
  run_once: true
"""

RETURN = r"""
checked:
  description: The role variables that were checked.
  returned: success
  type: list
  elements: str
  sample: [slurm_config, slurm_partitions]
errors:
  description: Every broken rule, each as the variable path, a colon, and what is allowed.
  returned: failure
  type: list
  elements: str
  sample:
    - "slurm_config: a slurm.conf key (letters and digits) the role does not compute ... (the key 'SlurmctldHost')"
"""
