#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: network_segment
short_description: Put a label's nodes on their own VLAN (Slingshot) or InfiniBand PKey (UFM)
version_added: "0.1.0"
description:
  - Segregates a vCluster on the network, which neither CSM nor OpenCHAMI tools do.
  - B(VLAN) (Slingshot fabric manager) - makes the VLAN (named after the label), a port policy named after the label
    that allows it, and links that policy from the edge port of every member of the label; ports of nodes that left
    the label are unlinked. A node's edge port is the port whose C(dst_port), less its 2-character NIC suffix, is the
    node's xname. Other policies on the ports are kept.
  - B(PKey) (NVIDIA UFM) - adds the port GUIDs of the label's members to the PKey with O(membership) and removes the
    GUIDs of other SMD nodes; GUIDs of hosts SMD does not know (storage servers, UFM itself) are left alone. Node
    GUIDs are found in UFM's C(resources/ports) by host name (the node's SMD EthernetInterface description, or
    C(nidNNNNNN)).
  - O(state=absent) unlinks and deletes the port policy and the VLAN (only when the VLAN carries this segment's
    name), or deletes the PKey.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
attributes:
  check_mode:
    support: full
    description: Reports which nodes would join or leave the segment and what would be created or deleted.
  diff_mode:
    support: full
    description: Shows the segment (its id and member nodes) before and after.
  platform:
    support: full
    platforms: controller
    description: Runs where the fabric manager and UFM are reachable, usually the controller.
options:
  label:
    description:
      - The label whose members make up the segment. The label must exist for O(state=present); its current members
        are used.
    type: str
    required: true
  planned_members:
    description:
      - In check mode only, the members the label will have when the task really runs (the C(members) of
        M(hpc.vcluster.vcluster_plan)), instead of its current ones, so that the plan of a vCluster that does not exist
        yet, or grows or shrinks, can be shown. Outside check mode the label's members are used as always.
    type: list
    elements: str
  vlan:
    description:
      - Slingshot VLAN id (1-4094). Mutually exclusive with O(pkey).
    type: int
  pkey:
    description:
      - InfiniBand partition key, in hex (V(0x0a12)), 0x1-0x7ffe. Mutually exclusive with O(vlan).
    type: str
  name:
    description:
      - Name of the VLAN (fabric manager) or partition (UFM). Defaults to the label.
    type: str
  membership:
    description:
      - PKey membership of the members, V(full) (they talk to each other) or V(limited) (only to full members).
      - For a VLAN, V(full) makes it the ports' native (untagged) VLAN, V(limited) only allows it tagged.
    type: str
    choices: [full, limited]
    default: full
  state:
    description:
      - V(present) makes the segment hold exactly the label's members; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  ufm_username:
    description:
      - UFM user (HTTP Basic; UFM does not take the site token).
      - If not set, E(VCLUSTER_UFM_USERNAME) is used.
    type: str
  ufm_password:
    description:
      - Password of O(ufm_username).
      - If not set, E(VCLUSTER_UFM_PASSWORD) is used.
    type: str
notes:
  - The fabric manager is reached at C(<api_url>/apis/fabric-manager) and UFM at C(<api_url>/ufmRest) unless
    O(service_urls) says otherwise; UFM usually runs on a host of its own, give its URL as the C(ufm) key of
    O(service_urls) then, for example C(https://ufm.example/ufmRest).
seealso:
  - module: hpc.vcluster.node_group
"""

EXAMPLES = r"""
- name: Put vc_blue on VLAN 210
  hpc.vcluster.network_segment:
    label: vc_blue
    vlan: 210
  delegate_to: localhost

- name: Put vc_blue on PKey 0x0a12 as full members
  hpc.vcluster.network_segment:
    label: vc_blue
    pkey: "0x0a12"
    ufm_username: admin
    ufm_password: "{{ ufm_password }}"
    service_urls:
      ufm: https://ufm.example.org/ufmRest
  delegate_to: localhost

- name: Remove the VLAN when the vCluster is released
  hpc.vcluster.network_segment:
    label: vc_blue
    vlan: 210
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
segment:
  description: The segment after the task (as it would be, in check mode). Empty when absent.
  returned: always
  type: dict
  contains:
    type:
      description: V(vlan) or V(pkey).
      type: str
      sample: vlan
    id:
      description: VLAN id (as a string) or PKey (normalised, V(0xa12)).
      type: str
      sample: "210"
    name:
      description: VLAN or partition name.
      type: str
      sample: vc_blue
    membership:
      description: Membership of the members.
      type: str
      sample: full
    members:
      description: Nodes on the segment.
      type: list
      elements: str
      sample: [x1000c0s0b0n0, x1000c0s1b0n0]
added:
  description: Nodes put on the segment.
  returned: always
  type: list
  elements: str
  sample: [x1000c0s1b0n0]
removed:
  description: Nodes taken off the segment.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.hpc.vcluster.plugins.module_utils._fabric import nodes_on_policy
from ansible_collections.hpc.vcluster.plugins.module_utils._fabric import policy_link as fabric_policy_link
from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError
from ansible_collections.hpc.vcluster.plugins.module_utils._targets import label_members, members_diff, planned_members
from ansible_collections.hpc.vcluster.plugins.module_utils._ufm import normalize_pkey


def segment_view(kind, ident, name, membership, members):
    return {"type": kind, "id": str(ident), "name": name, "membership": membership, "members": sorted(members)}


# ------------------------------------------------------------------------------ VLAN
def vlan_present(module, label, members):
    params = module.params
    fabric = module.clients.fabric
    vlan_id = params["vlan"]
    name = params["name"] or label
    native = params["membership"] == "full"
    vlan_link = "/fabric/vlans/%d" % vlan_id
    policy_link = fabric_policy_link(label)

    vlan = fabric.vlan(vlan_id)
    if vlan is not None and vlan.get("name") != name:
        raise SiteError("VLAN %d exists with the name %r, not %r: it belongs to another segment. Choose another VLAN "
                        "id (or remove that segment first). Nothing was changed." % (vlan_id, vlan.get("name"), name))
    policy = fabric.policy(label)
    policy_ok = policy is not None and [str(v) for v in policy.get("allowedVlans") or []] == [vlan_link] \
        and bool(policy.get("nativeVlanId")) == native
    ports = fabric.edge_ports()
    missing = sorted(set(members) - set(ports))
    if missing:
        raise SiteError("the fabric manager has no edge port for %s (no port whose dst_port is <xname>h0). "
                        "Nothing was changed." % ", ".join(missing))
    on_policy = nodes_on_policy(ports, policy_link)
    before_members = on_policy if (policy is not None and vlan is not None) else []
    before = segment_view("vlan", vlan_id, name, params["membership"], before_members) if vlan is not None else {}
    if policy is not None and not policy_ok:
        before_members = []  # the policy is recreated: every member is (re)attached
    added, removed = members_diff(before_members, members)
    # ports holding the policy that must lose it: non-members, and every port when the policy is recreated
    unlink = sorted(set(on_policy) - set(members)) if policy_ok or policy is None else list(on_policy)
    link = sorted(set(members) - set(on_policy)) if policy_ok else list(members)
    changed = vlan is None or not policy_ok or bool(unlink) or bool(link)
    after = segment_view("vlan", vlan_id, name, params["membership"], members)
    result = {"changed": changed, "segment": after, "added": added, "removed": sorted(set(on_policy) - set(members))}
    if changed:
        result.update(module.diff_result(before, after))
    if not changed or module.check_mode:
        return result
    fabric.patch_ports((ports[node]["documentSelfLink"], [p for p in ports[node].get("portPolicyLinks") or []
                                                          if p != policy_link]) for node in unlink)
    for node in unlink:
        ports[node]["portPolicyLinks"] = [p for p in ports[node].get("portPolicyLinks") or [] if p != policy_link]
    if policy is not None and not policy_ok:
        fabric.delete_policy(label)
    if vlan is None:
        fabric.create_vlan(vlan_id, name)
    if not policy_ok:
        fabric.create_policy(label, vlan_id, native=native)
    fabric.patch_ports((ports[node]["documentSelfLink"], list(ports[node].get("portPolicyLinks") or []) + [policy_link])
                       for node in link)
    return result


def vlan_absent(module, label):
    params = module.params
    fabric = module.clients.fabric
    vlan_id = params["vlan"]
    name = params["name"] or label
    policy_link = fabric_policy_link(label)
    vlan = fabric.vlan(vlan_id)
    policy = fabric.policy(label)
    if policy is None and (vlan is None or vlan.get("name") != name):
        return {"changed": False, "segment": {}, "added": [], "removed": []}
    ports = fabric.edge_ports()
    on_policy = nodes_on_policy(ports, policy_link)
    result = {"changed": True, "segment": {}, "added": [], "removed": on_policy}
    result.update(module.diff_result(segment_view("vlan", vlan_id, name, params["membership"], on_policy), {}))
    if module.check_mode:
        return result
    fabric.patch_ports((ports[node]["documentSelfLink"], [p for p in ports[node].get("portPolicyLinks") or []
                                                          if p != policy_link]) for node in on_policy)
    if policy is not None:
        fabric.delete_policy(label)
    if vlan is not None:
        if vlan.get("name") == name:
            fabric.delete_vlan(vlan_id)
        else:
            module.warn("VLAN %d is named %r, not %r: left in place" % (vlan_id, vlan.get("name"), name))
    return result


# ------------------------------------------------------------------------------ PKey
def node_guids(module, ufm, xnames):
    """``{xname: [guid]}`` for SMD nodes, matched to UFM host ports by host name."""
    smd = module.clients.smd
    names = {}
    for iface in smd.ethernet_interfaces():
        if iface.get("ComponentID") and iface.get("Description"):
            names.setdefault(iface["ComponentID"], set()).add(iface["Description"])
    for comp in smd.components(type="Node"):
        if comp.get("NID") is not None:
            names.setdefault(comp["ID"], set()).add("nid%06d" % int(comp["NID"]))
        names.setdefault(comp["ID"], set()).add(comp["ID"])
    by_host = ufm.host_guids()
    result = {}
    for xname in xnames if xnames is not None else names:
        guids = set()
        for host in names.get(xname, set()):
            guids.update(by_host.get(host, []))
        if guids:
            result[xname] = sorted(guids)
    return result


def pkey_present(module, label, members, ufm):
    params = module.params
    pkey = normalize_pkey(params["pkey"])
    membership = params["membership"]
    guids_of = node_guids(module, ufm, None)
    missing = sorted(x for x in members if x not in guids_of)
    if missing:
        raise SiteError("UFM knows no port GUID for %s (looked up by host name in resources/ports). Nothing was "
                        "changed." % ", ".join(missing))
    node_of = dict((g, x) for x, gs in guids_of.items() for g in gs)
    record = ufm.pkey(pkey)
    current = dict((str(g.get("guid", "")).lower(), g.get("membership", "full"))
                   for g in (record or {}).get("guids") or [])
    on_pkey = sorted(set(node_of[g] for g in current if g in node_of))
    before = segment_view("pkey", pkey, params["name"] or label, membership, on_pkey) if record is not None else {}
    wanted = dict((g, membership) for x in members for g in guids_of[x])
    add = sorted(g for g, m in wanted.items() if current.get(g) != m)
    remove = sorted(g for g in current if g in node_of and g not in wanted)
    changed = record is None or bool(add) or bool(remove)
    after = segment_view("pkey", pkey, params["name"] or label, membership, members)
    added, removed = members_diff(on_pkey, members)
    result = {"changed": changed, "segment": after, "added": added, "removed": removed}
    if changed:
        result.update(module.diff_result(before, after))
    if not changed or module.check_mode:
        return result
    if record is None and not add:
        ufm.create_pkey(pkey)
    if add:
        ufm.add_guids(pkey, add, membership=membership)
    if remove:
        ufm.remove_guids(pkey, remove)
    return result


def pkey_absent(module, label, ufm):
    params = module.params
    pkey = normalize_pkey(params["pkey"])
    record = ufm.pkey(pkey)
    if record is None:
        return {"changed": False, "segment": {}, "added": [], "removed": []}
    guids_of = node_guids(module, ufm, None)
    node_of = dict((g, x) for x, gs in guids_of.items() for g in gs)
    on_pkey = sorted(set(node_of[str(g.get("guid", "")).lower()] for g in record.get("guids") or []
                         if str(g.get("guid", "")).lower() in node_of))
    result = {"changed": True, "segment": {}, "added": [], "removed": on_pkey}
    result.update(module.diff_result(segment_view("pkey", pkey, params["name"] or label, params["membership"], on_pkey), {}))
    if not module.check_mode:
        ufm.delete_pkey(pkey)
    return result


def run_module(module):
    params = module.params
    label = params["label"]
    module.access.check_labels([label])
    if params["pkey"] is not None:
        try:
            normalize_pkey(params["pkey"])
        except ValueError as exc:
            raise SiteError("pkey: %s" % exc)
    elif not 1 <= params["vlan"] <= 4094:
        raise SiteError("vlan must be between 1 and 4094, got %d" % params["vlan"])
    present = params["state"] == "present"
    planned = planned_members(module) if present else None
    members = (planned if planned is not None else label_members(module.clients.smd, label)) if present else []
    if params["vlan"] is not None:
        return vlan_present(module, label, members) if present else vlan_absent(module, label)
    ufm = module.clients.ufm(params["ufm_username"], params["ufm_password"])
    return pkey_present(module, label, members, ufm) if present else pkey_absent(module, label, ufm)


def main():
    argument_spec = dict(
        label=dict(type="str", required=True),
        planned_members=dict(type="list", elements="str"),
        vlan=dict(type="int"),
        pkey=dict(type="str", no_log=False),
        name=dict(type="str"),
        membership=dict(type="str", choices=["full", "limited"], default="full"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        ufm_username=dict(type="str", fallback=(env_fallback, ["VCLUSTER_UFM_USERNAME"])),
        ufm_password=dict(type="str", no_log=True, fallback=(env_fallback, ["VCLUSTER_UFM_PASSWORD"])),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True,
                        mutually_exclusive=[("vlan", "pkey")], required_one_of=[("vlan", "pkey")])
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
