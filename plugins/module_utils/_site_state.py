# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the site holds for one vCluster, as one hash: its label's members, its members' boot parameters
and power states, and its VLAN (the VLAN, the label's port policy, the nodes whose ports carry it).

vcluster_release records it with a release; vcluster_plan reads it again at the next run. When the
manifest and this hash are what the latest successful release recorded, the label, boot, network and
power steps have nothing to do and are skipped (an unchanged re-run); a label, boot parameters, power
state or VLAN changed by hand on the site changes the hash, so the steps run and put it back. Four
reads of the site in the module that already runs, instead of four module runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

#: the network kinds this hash can read; a PKey (UFM, with credentials of its own) is not hashed
HASHED_NETWORKS = ("vlan",)


def network_state(fabric, label, vlan_id):
    """The VLAN as network_segment compares it: the VLAN's name, the label's port policy, the nodes on it."""
    policy_link = "/fabric/port-policies/%s" % label
    vlan = fabric.vlan(int(vlan_id))
    policy = fabric.policy(label)
    ports = fabric.edge_ports()
    return {
        "vlan": None if vlan is None else {"id": int(vlan_id), "name": vlan.get("name")},
        "policy": None if policy is None else {"allowed": sorted(str(v) for v in policy.get("allowedVlans") or []),
                                               "native": bool(policy.get("nativeVlanId"))},
        "on": sorted(node for node, port in ports.items() if policy_link in (port.get("portPolicyLinks") or [])),
    }


def site_state(clients, label, label_members, members, network):
    """The site's state for the vCluster ``label``, or None when it cannot be hashed (a PKey segment).

    ``label_members``: the label's members as SMD has them now (the caller has read them);
    ``members``: the nodes whose boot parameters and power are read (the plan's members);
    ``network``: the manifest's network mapping (or None)."""
    network = network or {}
    if any(key not in HASHED_NETWORKS for key in network if key in ("vlan", "pkey")):
        return None
    members = sorted(set(members))
    boot = clients.bss.by_host(members) if members else {}
    power = clients.pcs.power_status(members) if members else {}
    return {
        "label": label,
        "label_members": sorted(set(label_members)),
        "boot": dict((x, boot.get(x)) for x in members),
        "power": dict((x, (power.get(x) or {}).get("powerState")) for x in members),
        "network": network_state(clients.fabric, label, network["vlan"]) if "vlan" in network else None,
    }


def fingerprint(state):
    """``sha256:<hex>`` of a site_state (canonical JSON), or '' for None."""
    if state is None:
        return ""
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
