# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options the two SMD inventory plugins (hpc.vcluster.openchami, hpc.vcluster.csm) share."""
from __future__ import annotations


class ModuleDocFragment(object):

    # Every option has an env: entry, because AWX turns inventory source variables and
    # credential injectors into environment variables, never into plugin options.
    # Options holding lists of mappings or mappings are type raw so that they can come
    # from the environment as JSON (ansible-core does not decode JSON for dict options).
    DOCUMENTATION = r"""
options:
  sites:
    description:
      - Several sites in one inventory source, as a list of mappings. Each mapping takes the site options
        (O(site_kind), O(api_url), O(token), O(token_file), O(client_id), O(client_secret), O(token_url),
        O(ca_path), O(validate_certs), O(timeout), O(service_urls)) plus
        C(name) (required, unique; also the site name the token variable E(<NAME>_ACCESS_TOKEN) is derived from),
        C(group_prefix) (alias C(prefix); replaces O(group_prefix) for this site's groups) and
        C(filters) (replaces O(filters) for this site). C(allowed_labels) and C(rbac_from_token) are accepted and
        not used here, as they are the site's access control for the modules when the same list gives a play each
        site's C(module_defaults) (P(hpc.vcluster.site_options#filter)).
      - When set, the top-level connection options are not used as a site. Only O(site_kind), O(ca_path),
        O(validate_certs) and O(timeout) are inherited by entries that do not set them; URLs and credentials
        never are, so one site's token is never sent to another site.
      - String values may be templates such as C({{ lookup('env', 'EIGER_CLIENT_SECRET') }}), so that secrets
        stay out of the file.
      - From the environment, a JSON list.
    type: raw
    env:
      - name: VCLUSTER_INVENTORY_SITES
  filters:
    description:
      - Server-side filters for SMD's C(/State/Components) and C(/memberships) calls, as a mapping of SMD
        query parameter to a value or a list of values (a list means any of them; different keys must all match).
      - "Keys: V(id), V(type), V(state), V(flag), V(role), V(subrole), V(enabled), V(softwarestatus), V(subtype),
        V(arch), V(class), V(nid), V(nid_start), V(nid_end), V(group) (a label), V(partition).
        Values may start with C(!) to negate, as SMD allows."
      - V(type) defaults to V(Node); the EthernetInterfaces call is filtered by the same types.
      - SMD accepts at most one V(group) value together with one V(partition) value.
      - From the environment, a JSON object.
    type: raw
    default: {}
    env:
      - name: VCLUSTER_INVENTORY_FILTERS
  include_labels:
    description:
      - Only nodes that carry at least one label (SMD group) matching one of these shell-style patterns become hosts.
      - This is applied on the controller, after the (single) SMD calls; to filter on the server by one label, use
        O(filters) with V(group).
    type: list
    elements: str
    default: []
    env:
      - name: VCLUSTER_INVENTORY_INCLUDE_LABELS
  exclude_labels:
    description:
      - Nodes that carry a label matching one of these shell-style patterns do not become hosts.
    type: list
    elements: str
    default: []
    env:
      - name: VCLUSTER_INVENTORY_EXCLUDE_LABELS
  hostnames:
    description:
      - How hosts are named, as a preference list; the first name a node has wins.
      - V(hostname) is the C(Description) of the node's SMD EthernetInterface when it is a valid host name
        (the interface on O(management_network) first); V(nid) is the NID formatted with O(nid_format);
        V(xname) is the component ID.
      - A name that several nodes of a site share is not used for any of them; they fall to their next
        preference, and the warning says so. The xname is always the last resort.
      - When the same name comes from several sites, each of those hosts is named C(<name>.<site name>), with a warning.
    type: list
    elements: str
    choices: [hostname, nid, xname]
    default: [hostname, nid, xname]
    env:
      - name: VCLUSTER_INVENTORY_HOSTNAMES
  nid_format:
    description:
      - printf-style format of V(nid) host names.
    type: str
    default: nid%06d
    env:
      - name: VCLUSTER_INVENTORY_NID_FORMAT
  management_network:
    description:
      - Name of the SMD network (C(IPAddresses[].Network)) whose address becomes C(ansible_host) and the
        C(<prefix>ip) host variable. When a node has no address on it, its first address on any network is used.
    type: str
    default: NMN
    env:
      - name: VCLUSTER_INVENTORY_MANAGEMENT_NETWORK
  hostvars_prefix:
    description:
      - Prefix of the host variables that carry SMD component fields (C(smd_role), C(smd_nid), ...).
      - C(ansible_host) and the C(vcluster_*) variables are never prefixed.
      - It must make valid variable names (letters, digits and C(_), not starting with a digit); another is refused.
    type: str
    default: smd_
    env:
      - name: VCLUSTER_INVENTORY_HOSTVARS_PREFIX
  interfaces:
    description:
      - Also set C(<prefix>interfaces), the list of all the node's interfaces (C(mac), C(ip), C(network), C(description)).
      - Off by default, since one nested list per host costs time at 10,000 hosts.
    type: bool
    default: false
    env:
      - name: VCLUSTER_INVENTORY_INTERFACES
  group_by:
    description:
      - The groups built in Python, without Jinja (cheap at 10,000 hosts). Names come from O(group_names).
      - V(label) one group per SMD label, V(partition) per partition, V(role) per role, V(role_subrole) per role and
        sub-role pair, V(subrole) per sub-role, V(arch), V(class), V(state) per value, V(site) one group per site.
    type: list
    elements: str
    choices: [label, partition, role, role_subrole, subrole, arch, class, state, site]
    default: [label, partition, role, role_subrole, arch, site]
    env:
      - name: VCLUSTER_INVENTORY_GROUP_BY
  group_prefix:
    description:
      - Prefix of every group this plugin builds (not of O(keyed_groups) or O(groups)).
    type: str
    default: ''
    env:
      - name: VCLUSTER_INVENTORY_GROUP_PREFIX
  group_names:
    description:
      - Name pattern per kind of group, with the fields C({label}), C({partition}), C({role}), C({subrole}),
        C({arch}), C({class}), C({state}) and C({site}) (the site name, allowed in every pattern).
      - "Defaults: V(label) C({label}), V(partition) C({partition}), V(role) C({role}), V(role_subrole)
        C({role}_{subrole}) (the names CSM's CFS inventory gives), V(subrole) C(subrole_{subrole}),
        V(arch) C(arch_{arch}), V(class) C(class_{class}), V(state) C(state_{state}), V(site) C(site_{site}).
        OpenCHAMI's ansible-smd-inventory names are C(grp_{label}) and C(prt_{partition})."
      - A name that is not a valid Ansible group name is converted (invalid characters become C(_), a leading digit
        gets a C(_) in front, C(all) and C(ungrouped) get the kind in front) and a warning lists every conversion.
        When two different SMD names would give the same group, the later one gets a C(_2) suffix, also reported.
      - From the environment, a JSON object.
    type: raw
    default: {}
    env:
      - name: VCLUSTER_INVENTORY_GROUP_NAMES
  retries:
    description:
      - How many times a failed SMD call is retried (connection errors, 429, 5xx), with jittered exponential backoff.
    type: int
    default: 3
    env:
      - name: VCLUSTER_INVENTORY_RETRIES
  compose:
    description:
      - Host variables from Jinja2 expressions, as a mapping of variable name to expression (the C(constructed) option).
        The expressions see the host's variables (C(smd_*), C(vcluster_*), C(ansible_host)).
      - Each expression is evaluated for every host (about 0.3 ms per host and expression on ansible-core 2.19).
      - From the environment, a JSON object (trusted as templates, like the configuration file).
    type: raw
    default: {}
    env:
      - name: VCLUSTER_INVENTORY_COMPOSE
  groups:
    description:
      - Groups from Jinja2 conditionals, as a mapping of group name to conditional (the C(constructed) option).
      - From the environment, a JSON object (trusted as templates, like the configuration file).
    type: raw
    default: {}
    env:
      - name: VCLUSTER_INVENTORY_GROUPS
  keyed_groups:
    description:
      - Groups from the values of a variable (the C(constructed) option), as a list of mappings with
        C(key) (an expression; required), C(prefix) (default empty), C(separator) (default C(_)),
        C(parent_group), C(default_value) (the name part when the value is empty or null) and
        C(trailing_separator) (false omits the separator after an empty value; exclusive with C(default_value)).
      - From the environment, a JSON list (trusted as templates, like the configuration file).
    type: raw
    default: []
    env:
      - name: VCLUSTER_INVENTORY_KEYED_GROUPS
  strict:
    description:
      - Whether a failing entry of O(compose), O(groups) or O(keyed_groups) is an error; by default it is skipped.
    type: bool
    default: false
    env:
      - name: VCLUSTER_INVENTORY_STRICT
  use_extra_vars:
    description:
      - Merge extra vars into the variables O(compose), O(groups) and O(keyed_groups) see (highest precedence).
    type: bool
    default: false
    ini:
      - section: inventory_plugins
        key: use_extra_vars
    env:
      - name: ANSIBLE_INVENTORY_USE_EXTRA_VARS
  leading_separator:
    description:
      - With O(keyed_groups) that have no prefix, whether the group name starts with the separator (C(_value)).
        Set to V(false) for C(value).
    type: bool
    default: true
    env:
      - name: VCLUSTER_INVENTORY_LEADING_SEPARATOR
notes:
  - The C(compose), C(groups), C(keyed_groups), C(strict), C(use_extra_vars) and C(leading_separator) options behave as in
    P(ansible.builtin.constructed#inventory); they are defined here so that each can also come from the environment.
"""
