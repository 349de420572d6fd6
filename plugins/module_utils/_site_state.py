# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the site holds for one vCluster, as one hash: its label's members, its members' boot parameters
and power states, and its VLAN (the VLAN, the label's port policy, the nodes whose ports carry it).

vcluster_release records it with a release; vcluster_plan reads it again at the next run. When the
manifest and this hash are what the latest successful release recorded, the label, boot, network and
power steps have nothing to do and are skipped (an unchanged re-run); a label, boot parameters, power
state or VLAN changed by hand on the site changes the hash, so the steps run and put it back. Four
reads of the site in the module that already runs, instead of four module runs.
"""

from __future__ import annotations

import hashlib
import json

from ansible_collections.hpc.vcluster.plugins.module_utils._fabric import nodes_on_policy, policy_link
from ansible_collections.hpc.vcluster.plugins.module_utils._labels import group_view


def network_state(fabric, label, vlan_id):
    """The VLAN as network_segment compares it: the VLAN's name, the label's port policy, the nodes on it."""
    vlan = fabric.vlan(int(vlan_id))
    policy = fabric.policy(label)
    return {
        "vlan": None if vlan is None else {"id": int(vlan_id), "name": vlan.get("name")},
        "policy": None if policy is None else {"allowed": sorted(str(v) for v in policy.get("allowedVlans") or []),
                                               "native": bool(policy.get("nativeVlanId"))},
        "on": nodes_on_policy(fabric.edge_ports(), policy_link(label)),
    }


def site_state(clients, label, group, members, network):
    """The site's state for the vCluster ``label``, or None when it cannot be hashed (a PKey segment: UFM is
    read with credentials of its own).

    ``group``: the label's SMD group as the caller read it (None when there is none); ``members``: the nodes
    whose boot parameters and power are read (the plan's members); ``network``: the manifest's network."""
    network = network or {}
    if "pkey" in network:
        return None
    members = sorted(set(members))
    boot = clients.bss.by_host(members) if members else {}
    power = clients.pcs.power_status(members) if members else {}
    return {
        "label": label,
        "label_members": group_view(group).get("members", []),
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
