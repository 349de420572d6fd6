# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: csm
short_description: Nodes of HPE Cray CSM sites (HSM/SMD) as Ansible hosts, grouped by label, partition, role and arch
version_added: 0.1.0
description:
  - Reads the nodes of one or several CSM sites from the Hardware State Manager (C(/apis/smd/hsm/v2)) in three requests
    per site, whatever the node count (C(/State/Components), C(/memberships), C(/Inventory/EthernetInterfaces)), plus one
    request for the Keycloak token, and makes one host per node.
  - Groups are named as CSM's CFS dynamic inventory names them (C(<label>), C(<partition>), C(<Role>),
    C(<Role>_<SubRole>)), plus C(arch_<Arch>) and C(site_<name>). Where CFS silently drops HSM labels that are not
    valid Ansible group names (C(vc-blue)), this plugin converts them (C(vc_blue)) and reports the conversion.
  - Hosts are named by a preference list (hostname from EthernetInterfaces, C(nid%06d), xname), carry the component
    fields as C(smd_*) variables, C(vcluster_labels), C(vcluster_partition), C(vcluster_site), and C(ansible_host) from
    the management network (C(NMN)) address.
  - Authentication is Keycloak client credentials (O(client_id) C(admin-client) and O(client_secret), from the
    C(admin-client-auth) Kubernetes secret) or a bearer token; a 401 refreshes the token once. Every option can also be
    set from its environment variable.
  - With O(cache) on, the raw HSM replies are cached (not the built inventory), keyed by the options that shape the
    queries; use the C(ansible.builtin.jsonfile) cache plugin to keep them across runs.
  - The inventory source file must end in C(csm.yml), C(csm.yaml) or C(hpc_csm.yml) (C(.yaml)), or be any YAML file
    whose C(plugin) key names this plugin.
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
    choices: [hpc.vcluster.csm, csm]
  site_kind:
    default: csm
  service_urls:
    type: raw
"""

EXAMPLES = r"""
---
# csm.yml: the site the environment describes. An AWX credential type injects VCLUSTER_API_URL,
# VCLUSTER_CLIENT_ID, VCLUSTER_CLIENT_SECRET and VCLUSTER_CA_PATH.
plugin: hpc.vcluster.csm

---
# alps.csm.yml: one CSM site through the NMN gateway, Keycloak's admin-client; compute nodes only.
plugin: hpc.vcluster.csm
api_url: https://api-gw-service-nmn.local
site_name: alps
client_id: admin-client
client_secret: "{{ lookup('ansible.builtin.env', 'ALPS_ADMIN_CLIENT_SECRET') }}"
ca_path: /etc/pki/trust/anchors/platform-ca-certs.crt
filters:
  role: Compute
  enabled: true
exclude_labels: [alps, prealps]       # site-wide labels: select hosts, not groups
hostnames: [nid]

---
# cached.csm.yml: HSM replies cached for ten minutes across runs; `ansible-inventory --flush-cache` refetches.
plugin: hpc.vcluster.csm
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /var/cache/hpc.vcluster/inventory
cache_timeout: 600

---
# sites.csm.yml: two CSM systems and an OpenCHAMI one in one source, groups kept apart by prefix.
plugin: hpc.vcluster.csm
sites:
  - name: alps
    api_url: https://api.cmn.alps.example.org
    token_url: https://auth.cmn.alps.example.org/keycloak/realms/shasta/protocol/openid-connect/token
    client_id: admin-client
    client_secret: "{{ lookup('ansible.builtin.env', 'ALPS_CLIENT_SECRET') }}"
    group_prefix: alps_
  - name: tds
    api_url: https://api.cmn.tds.example.org
    token_url: https://auth.cmn.tds.example.org/keycloak/realms/shasta/protocol/openid-connect/token
    client_id: admin-client
    client_secret: "{{ lookup('ansible.builtin.env', 'TDS_CLIENT_SECRET') }}"
    group_prefix: tds_
  - name: lab
    site_kind: openchami
    api_url: https://demo.openchami.cluster:8443
    group_prefix: lab_

---
# CFS-style groups only (no arch or site groups), plus a keyed group per HSM state.
plugin: hpc.vcluster.csm
group_by: [label, partition, role, role_subrole]
keyed_groups:
  - key: smd_state
    prefix: hsm_state
"""

from ansible_collections.hpc.vcluster.plugins.plugin_utils._inventory import SmdInventoryBase


class InventoryModule(SmdInventoryBase):

    NAME = "hpc.vcluster.csm"
    SITE_KIND = "csm"
    SUFFIXES = ("csm.yml", "csm.yaml", "hpc_csm.yml", "hpc_csm.yaml")
    SHORT_NAMES = ("csm",)
