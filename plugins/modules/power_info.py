#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: power_info
short_description: Read the power state of nodes or of a label's members from PCS
version_added: "0.2.0"
description:
  - Reads the power state of nodes through PCS (C(POST /power-status), the xnames in the body), the same on OpenCHAMI
    and CSM, in one call whatever the number of nodes, and never changes anything.
  - This is what a playbook asks before deciding to power on or restart, instead of running M(hpc.vcluster.power) in
    check mode.
  - A node PCS does not know, or cannot reach, is reported with power V(undefined) and its error, not as a failure.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.info
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
  - hpc.vcluster.access.targets
attributes:
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller.
options:
  missing_ok:
    description:
      - With O(label), a label that does not exist has no members (an empty answer) instead of an error.
    type: bool
    default: false
  smd_state:
    description:
      - Also read each node's state and flag on the management plane (SMD C(State/Components), one bulk call), which
        tells a node that died (V(Standby), flag V(Alert)) from one that was powered off. See RV(components).
    type: bool
    default: false
    version_added: "0.3.0"
seealso:
  - module: hpc.vcluster.power
  - module: hpc.vcluster.boot_params_info
"""

EXAMPLES = r"""
- name: Which nodes of vc_blue are on?
  hpc.vcluster.power_info:
    label: vc_blue
  delegate_to: localhost
  register: power

- name: Restart only the nodes that are on
  hpc.vcluster.power:
    nodes: "{{ power.on }}"
    state: soft-restart
  delegate_to: localhost
  when: power.on | length > 0
"""

RETURN = r"""
nodes:
  description: The nodes read.
  returned: always
  type: list
  elements: str
  sample: [x1000c0s0b0n0, x1000c0s1b0n0]
power_state:
  description: Each node's power state as PCS reports it (V(on), V(off), V(undefined)).
  returned: always
  type: dict
  sample: {x1000c0s0b0n0: "on", x1000c0s1b0n0: "off"}
management_state:
  description: Each node's management state as PCS reports it (V(available), V(unavailable)).
  returned: always
  type: dict
  sample: {x1000c0s0b0n0: available}
"on":
  description: The nodes that are on.
  returned: always
  type: list
  elements: str
"off":
  description: The nodes that are off.
  returned: always
  type: list
  elements: str
components:
  description: With O(smd_state), each node's SMD C(state) and C(flag) (a node SMD does not know is left out).
  returned: when O(smd_state) is true
  type: dict
  sample: {x1000c0s0b0n0: {state: Ready, flag: OK}, x1000c0s1b0n0: {state: Standby, flag: Alert}}
  version_added: "0.3.0"
errors:
  description: Nodes PCS reports an error for, with the error (such nodes have power V(undefined)).
  returned: always
  type: dict
  sample: {x9999c0s0b0n0: "Missing xname"}
"""

from ansible_collections.hpc.vcluster.plugins.module_utils._info import run_target_info


def read(module, targets):
    status = module.clients.pcs.power_status(targets) if targets else {}
    power = dict((x, item.get("powerState") or "undefined") for x, item in status.items())
    result = {
        "power_state": power,
        "management_state": dict((x, item.get("managementState") or "") for x, item in status.items()),
        "on": sorted(x for x, p in power.items() if p == "on"),
        "off": sorted(x for x, p in power.items() if p == "off"),
        "errors": dict((x, item["error"]) for x, item in status.items() if item.get("error")),
    }
    if module.params.get("smd_state"):
        comps = module.clients.smd.components_by_ids(targets) if targets else []
        result["components"] = dict((c["ID"], {"state": c.get("State", ""), "flag": c.get("Flag", "")})
                                    for c in comps if c.get("ID"))
    return result


def main():
    run_target_info(read, dict(smd_state=dict(type="bool", default=False)))


if __name__ == "__main__":
    main()
