# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: openchami
short_description: Nodes of OpenCHAMI sites (SMD) as Ansible hosts, grouped by label, partition, role and arch
version_added: 0.1.0
description:
  - Reads the nodes of one or several OpenCHAMI sites from SMD (C(/hsm/v2)) in three requests per site, whatever the
    node count (C(/State/Components), C(/memberships), C(/Inventory/EthernetInterfaces)), and makes one host per node.
  - Hosts are named by a preference list (hostname from EthernetInterfaces, C(nid%06d), xname), carry the component
    fields as C(smd_*) variables, C(vcluster_labels), C(vcluster_partition), C(vcluster_site), and C(ansible_host) from
    the management network address.
  - Groups per label, partition, role, role and sub-role, arch and site are built in Python (cheap at 10,000 hosts);
    names that are not valid Ansible group names are converted and the conversions reported in a warning.
    O(compose), O(groups) and O(keyed_groups) add user groups and variables.
  - The token comes from O(token), O(token_file), the variable E(<SITE_NAME>_ACCESS_TOKEN) as the ochami CLI names it,
    or client credentials; a 401 refreshes it once. Every option can also be set from its environment variable.
  - With O(cache) on, the raw SMD replies are cached (not the built inventory), keyed by the options that shape the
    queries; use the C(ansible.builtin.jsonfile) cache plugin to keep them across runs.
  - The inventory source file must end in C(openchami.yml), C(openchami.yaml) or C(hpc_openchami.yml) (C(.yaml)),
    or be any YAML file whose C(plugin) key names this plugin.
  - See C(docs/inventory.md) in the collection for groups, host variables, AWX use and measured performance.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
requirements:
  - requests
extends_documentation_fragment:
  - hpc.vcluster.inventory
  - hpc.vcluster.site.plugins
  - inventory_cache
options:
  plugin:
    description:
      - The name of this plugin; the short name is accepted too, since AWX and some tools compare it literally.
    required: true
    type: str
    choices: [hpc.vcluster.openchami, openchami]
  site_kind:
    default: openchami
  service_urls:
    type: raw
"""

EXAMPLES = r"""
---
# openchami.yml: the site the environment describes (VCLUSTER_API_URL, VCLUSTER_SITE_NAME,
# VCLUSTER_CA_PATH, and the token in <SITE_NAME>_ACCESS_TOKEN, as the ochami CLI reads it).
plugin: hpc.vcluster.openchami

---
# demo.openchami.yml: one site, spelled out; the token stays in DEMO_ACCESS_TOKEN.
plugin: hpc.vcluster.openchami
api_url: https://demo.openchami.cluster:8443
site_name: demo
ca_path: /etc/pki/ca-trust/source/anchors/openchami.pem
filters:
  role: Compute
  state: [Ready, "On"]
hostnames: [hostname, nid]
exclude_labels: [maintenance]

---
# vclusters.openchami.yml: the hosts of one vCluster (label) only, named like ansible-smd-inventory,
# with the raw SMD replies cached for an hour in a directory.
plugin: hpc.vcluster.openchami
filters:
  group: eiger
hostnames: [nid]
group_names:
  label: grp_{label}
  partition: prt_{partition}
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/hpc.vcluster/inventory
cache_timeout: 3600

---
# sites.openchami.yml: two OpenCHAMI sites in one source, each with its own URL, token and group prefix.
# Tokens come from ALPHA_ACCESS_TOKEN and BETA_ACCESS_TOKEN (or a templated option, as below).
plugin: hpc.vcluster.openchami
ca_path: /etc/ssl/site-ca.pem        # inherited by both entries
sites:
  - name: alpha
    api_url: https://alpha.example.org:8443
    group_prefix: alpha_
  - name: beta
    api_url: https://beta.example.org:8443
    token: "{{ lookup('ansible.builtin.file', '/run/secrets/beta-token') }}"
    group_prefix: beta_
    filters: {role: Compute}

---
# With user groups and variables on top of the built-in ones (each expression costs time per host).
plugin: hpc.vcluster.openchami
compose:
  ansible_user: "'root'"
keyed_groups:
  - key: smd_state
    prefix: state
groups:
  gpu: "'gpu' in vcluster_labels"
"""

from ansible_collections.hpc.vcluster.plugins.plugin_utils._inventory import SmdInventoryBase


class InventoryModule(SmdInventoryBase):

    NAME = "hpc.vcluster.openchami"
    SITE_KIND = "openchami"
    SUFFIXES = ("openchami.yml", "openchami.yaml", "hpc_openchami.yml", "hpc_openchami.yaml")
    SHORT_NAMES = ("openchami",)
