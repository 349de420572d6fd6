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
  - >-
    Reads a vCluster manifest and validates it on the controller, before anything changes, as the trust boundary
    between the tenants who write manifests and the nodes they are applied to as root.
  - >-
    B(Reading) - one loader for a file, YAML text or data: duplicate keys, keys that are not strings, tags other than
    plain data (and C(!vault)), more than 32 levels of nesting, more than 100000 values or 8 MiB of text once YAML
    aliases are expanded, and files over 4 MiB are refused; every read or decode error says the line and column.
  - >-
    B(Checking) - in passes, every problem of a pass reported at once, each as the path of the field
    (C(vservices[2].config.partitions)), what is wrong and what is allowed, quoting at most a short prefix of a value;
    first control characters and Jinja delimiters anywhere (a manifest is data), and the JSON Schema
    (C(schemas/vcluster.schema.json)); then the field rules (at least one node, reserved PKeys and site VLANs, mount
    points and sources, external git sources and versions, config keys that Ansible would treat as its own variables,
    the kernel command line's length) and the references between fields; then secrets; then each vService's
    C(config) against its role's contract (C(meta/argument_specs.yml) and the C(config_schema) of
    C(meta/vservice.yml)).
  - >-
    B(Secrets) - a setting a role marks C(no_log) is given as a reference, never in clear (C(!vault),
    C({secret: {vault: ...}}), C({secret: {env: NAME}}), C({secret: {file: PATH}}), C({secret: {lookup: NAME, terms:
    [...]}})); the value is read in memory to check it against the role's contract and the result carries only the
    reference, which the P(hpc.vcluster.secret#lookup) lookup reads where the setting is used.
  - >-
    B(Site policy) - what a manifest may not decide comes from this task's options or the controller's environment
    (an AWX credential or job template sets it), never from the manifest.
  - >-
    B(External vServices) - once their sources pass the rules, they are fetched at the asked version (tag, branch or
    commit) into O(vservice_cache), git limited to O(git_schemes); a role is kept per commit and verified on every
    run, and the task reports C(changed) when it installed one (a new version). Their own contract is then checked like
    a collection role's. This happens in check mode too (it changes the controller's cache, not the site).
  - >-
    Returns the manifest with defaults filled in and its vServices in the order they must be applied
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
      - The manifest's content, as a mapping (for example from a vars file) or as YAML text.
      - Ansible has already read (and templated) a mapping given here, so the loader's duplicate-key check does not
        apply to it (set C(DUPLICATE_YAML_DICT_KEY=error) for that); give tenants' manifests as O(path).
    type: raw
  git_schemes:
    description:
      - Transports external vServices may be fetched over. C(file) (local repositories) is for tests and mirrors on
        the controller; a manifest cannot change this list.
      - If not set, E(VCLUSTER_MANIFEST_GIT_SCHEMES) (comma-separated) is used, then V([https, ssh]).
    type: list
    elements: str
  git_sources:
    description:
      - URL prefixes external vServices must come from (for example V(https://git.example.org/vservices/)); empty
        allows any host over O(git_schemes).
      - If not set, E(VCLUSTER_MANIFEST_GIT_SOURCES) (comma-separated) is used.
    type: list
    elements: str
  reserved_vlans:
    description:
      - VLANs no vCluster may take on this site (for example the management networks).
      - If not set, E(VCLUSTER_MANIFEST_RESERVED_VLANS) (comma-separated) is used.
    type: list
    elements: int
  secret_env_prefix:
    description:
      - Environment variables of the controller a manifest may read as secrets must start with this, so that the
        controller's own credentials (C(VCLUSTER_CLIENT_SECRET)...) stay out of reach.
      - If not set, E(VCLUSTER_MANIFEST_SECRET_ENV_PREFIX) is used, then V(VCLUSTER_SECRET_).
    type: str
  secret_dirs:
    description:
      - Directories a manifest's secret files must be in (symbolic links resolved).
      - If not set, E(VCLUSTER_MANIFEST_SECRET_DIRS) (separated by C(:)) is used, then the manifest file's directory
        (the playbook's directory for a manifest given as O(manifest)).
    type: list
    elements: path
  vservice_cache:
    description:
      - Directory on the controller where external vService roles are kept, as a bare mirror per repository and a
        verified checkout per commit (C(<cache>/roles/<commit>/<name>)), which the deploy includes by path.
      - If not set, E(VCLUSTER_VSERVICE_CACHE) is used, then C(~/.cache/hpc.vcluster/vservices).
    type: path
  secret_lookups:
    description:
      - Lookup plugins a manifest may name as the source of a secret (for example
        V(community.hashi_vault.hashi_vault)); none by default, since a lookup runs on the controller.
      - If not set, E(VCLUSTER_MANIFEST_SECRET_LOOKUPS) (comma-separated) is used.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: Changes nothing on the site; external vService roles are fetched into the controller's cache.
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
  - module: hpc.vcluster.vservice_contract
  - plugin: hpc.vcluster.secret
    plugin_type: lookup
notes:
  - The schema, the rules, the role contracts and the secret references are documented in the collection's
    C(docs/manifest.md).
requirements:
  - jsonschema >= 4.18 (on the controller)
"""

EXAMPLES = r"""
- name: Validate the manifest before anything changes
  hpc.vcluster.vcluster_manifest:
    path: vclusters/eiger.yml
  register: vcluster

- name: The same, with this site's rules (usually set once in the environment of the AWX job template)
  hpc.vcluster.vcluster_manifest:
    path: vclusters/eiger.yml
    git_sources: ["https://git.cscs.example/vservices/"]
    reserved_vlans: [2, 4, 6, 7]
    secret_lookups: [community.hashi_vault.hashi_vault]

- name: Show the order vServices will be applied in
  ansible.builtin.debug:
    msg: "{{ vcluster.vservice_order }}"
"""

RETURN = r"""
manifest:
  description:
    - The validated manifest with defaults filled in.
    - C(vservices) is in apply order; each has its C(role) (a collection role's name, or the path of an external
      role's pinned checkout, whose C(source.commit) is set), its C(vars) (the config keys with the role prefix, as the
      role's variables; secrets as references) and C(has_destroy) (the role has a C(tasks/destroy.yml) for the destroy
      playbook).
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
fetched:
  description: External vServices whose role was installed by this run (a version not in the cache yet).
  returned: success
  type: list
  elements: str
  sample: [site_tuning]
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
    - "manifest.yml: line 12, column 3: duplicate key 'count' (first at line 10, column 3): YAML would keep only the last one"
"""
