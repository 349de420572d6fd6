#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: power
short_description: Power nodes or a label on, off, or restart them through PCS, and wait for it
version_added: "0.1.0"
description:
  - Powers nodes on or off, or restarts them, through PCS (the Power Control Service), the same on OpenCHAMI and CSM.
  - Reads the power status first, so V(on) and V(off) only act on the nodes not already in that state, and a
    second run reports no change.
  - Waits until PCS reports the transition completed (or aborted), up to O(wait_timeout), and returns each node's
    outcome. A node whose task failed or was unsupported makes the task fail, naming the node and PCS's reason.
  - A restart (V(soft-restart), V(hard-restart)) restarts the nodes that are on and powers on those that are off, so
    that afterwards every node has booted its current boot parameters. A restart always reports a change, like
    M(ansible.builtin.reboot).
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
  - hpc.vcluster.access.targets
attributes:
  check_mode:
    support: full
    description: Reports, from PCS power status, which nodes would be powered on, off or restarted.
  diff_mode:
    support: full
    description: Shows each changed node's power state before and after.
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller.
options:
  state:
    description:
      - The PCS operation. V(on) and V(off) (graceful) are idempotent; V(soft-off) is a graceful off that does not
        fall back to a forced one, V(force-off) pulls the plug.
      - V(soft-restart) is a graceful reboot, V(hard-restart) an off then on.
    type: str
    choices: ['on', 'off', soft-off, force-off, soft-restart, hard-restart]
    required: true
  wait:
    description:
      - Wait for the transition to complete. Without waiting, the task returns the transition ids at once.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the transition.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between two polls of the transition at first (the interval grows up to 15 s).
    type: float
    default: 2
  task_deadline_minutes:
    description:
      - PCS's own deadline for each node's task (C(taskDeadlineMinutes)); PCS's default (5) when not given.
    type: int
seealso:
  - module: hpc.vcluster.boot_params
  - module: hpc.vcluster.bos_session
"""

EXAMPLES = r"""
- name: Power on the nodes of vc_blue and wait until they are on
  hpc.vcluster.power:
    label: vc_blue
    state: "on"
  delegate_to: localhost

- name: Reboot two nodes into their new boot parameters
  hpc.vcluster.power:
    nodes: ["x1000c0s[0-1]b0n0"]
    state: soft-restart
    wait_timeout: 900
  delegate_to: localhost
  register: reboot

- name: Show each node's outcome
  ansible.builtin.debug:
    msg: "{{ reboot.node_results }}"

- name: Power off without waiting
  hpc.vcluster.power:
    label: vc_blue
    state: "off"
    wait: false
  delegate_to: localhost
"""

RETURN = r"""
nodes:
  description: The nodes acted on.
  returned: always
  type: list
  elements: str
  sample: [x1000c0s0b0n0, x1000c0s1b0n0]
changed_nodes:
  description: The nodes a transition was (would be, in check mode) started for.
  returned: always
  type: list
  elements: str
  sample: [x1000c0s1b0n0]
power_state:
  description:
    - Power state of each node after the task (C(on), C(off), C(undefined)), read back from PCS.
    - In check mode and without O(wait), the state predicted, or the state before.
  returned: always
  type: dict
  sample: {x1000c0s0b0n0: "on", x1000c0s1b0n0: "on"}
node_results:
  description: Each changed node's outcome, from its PCS task.
  returned: always
  type: dict
  sample:
    x1000c0s1b0n0:
      operation: "on"
      status: succeeded
      description: Transition confirmed, On
      error: ""
transitions:
  description: The PCS transitions started.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Transition id.
      type: str
      sample: 3fa85f64-5717-4562-b3fc-2c963f66afa6
    operation:
      description: PCS operation.
      type: str
      sample: soft-restart
    status:
      description: Transition status (C(new), C(in-progress), C(completed), C(aborted)).
      type: str
      sample: completed
    task_counts:
      description: Task counts as PCS reports them, C(un-supported) included.
      type: dict
      sample: {total: 2, new: 0, in-progress: 0, failed: 0, succeeded: 2, un-supported: 0}
"""

from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._pcs import task_counts, task_results
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError
from ansible_collections.hpc.vcluster.plugins.module_utils._targets import (
    TARGET_MUTUALLY_EXCLUSIVE, TARGET_REQUIRED_ONE_OF, module_targets, target_argument_spec)
from ansible_collections.hpc.vcluster.plugins.module_utils._wait import WaitTimeout

RESTARTS = ("soft-restart", "hard-restart")
OFFS = ("off", "soft-off", "force-off")


def plan(state, status):
    """{operation: [xnames]} to reach ``state`` from the power status, and the predicted states."""
    ops, predicted = {}, {}
    for xname, item in sorted(status.items()):
        power = item.get("powerState") or "undefined"
        predicted[xname] = power
        if state == "on" and power != "on":
            ops.setdefault("on", []).append(xname)
            predicted[xname] = "on"
        elif state in OFFS and power != "off":
            ops.setdefault(state, []).append(xname)
            predicted[xname] = "off"
        elif state in RESTARTS:
            ops.setdefault(state if power == "on" else "on", []).append(xname)
            predicted[xname] = "on"
    return ops, predicted


def run_module(module):
    params = module.params
    targets = module_targets(module)
    pcs = module.clients.pcs
    status = pcs.power_status(targets)
    bad = dict((x, item.get("error")) for x, item in status.items() if item.get("error"))
    if bad:
        raise SiteError("PCS cannot power %s: %s. Nothing was changed." % (
            "these nodes" if len(bad) > 1 else "this node",
            "; ".join("%s: %s" % (x, e) for x, e in sorted(bad.items()))))
    before = dict((x, item.get("powerState")) for x, item in status.items())
    ops, predicted = plan(params["state"], status)
    changed_nodes = sorted(x for nodes in ops.values() for x in nodes)
    result = {"changed": bool(changed_nodes), "nodes": targets, "changed_nodes": changed_nodes,
              "power_state": predicted, "node_results": {}, "transitions": []}
    if changed_nodes:
        result.update(module.diff_result(dict((x, before[x]) for x in changed_nodes),
                                         dict((x, predicted[x]) for x in changed_nodes)))
    if module.check_mode or not changed_nodes:
        return result

    started = []
    for operation in sorted(ops, key=lambda op: op != "on"):
        transition_id = pcs.transition(operation, ops[operation], params["task_deadline_minutes"])
        started.append((transition_id, operation))
        result["transitions"].append({"id": transition_id, "operation": operation, "status": "new",
                                      "task_counts": {}})
    if not params["wait"]:
        result["power_state"] = before
        return result

    failures = []
    for index, (transition_id, operation) in enumerate(started):
        try:
            final = pcs.wait(transition_id, params["wait_timeout"], params["poll_interval"])
        except WaitTimeout as exc:
            last = exc.last or {}
            result["transitions"][index].update(status=last.get("transitionStatus", "unknown"),
                                                task_counts=task_counts(last))
            module.fail_json(msg="PCS transition %s (%s of %s) did not complete within %ss; it goes on in PCS "
                                 "(see GET /transitions/%s)" % (transition_id, operation, ", ".join(ops[operation]),
                                                                params["wait_timeout"], transition_id), **result)
        result["transitions"][index].update(status=final.get("transitionStatus"), task_counts=task_counts(final))
        for xname, outcome in task_results(final).items():
            outcome["operation"] = operation
            result["node_results"][xname] = outcome
            if outcome["status"] != "succeeded":
                failures.append("%s: %s %s%s" % (xname, operation, outcome["status"],
                                                 " (%s)" % (outcome["error"] or outcome["description"])
                                                 if (outcome["error"] or outcome["description"]) else ""))
        if final.get("transitionStatus") == "aborted" and not failures:
            failures.append("transition %s was aborted" % transition_id)
    after = pcs.power_status(targets)
    result["power_state"] = dict((x, item.get("powerState")) for x, item in after.items())
    if "diff" in result:
        result["diff"]["after"] = dict((x, result["power_state"][x]) for x in changed_nodes)
    if failures:
        module.fail_json(msg="power %s failed for %d node(s): %s" % (params["state"], len(failures),
                                                                     "; ".join(failures)), **result)
    return result


def main():
    argument_spec = target_argument_spec()
    argument_spec.update(
        state=dict(type="str", required=True, choices=["on", "off", "soft-off", "force-off", "soft-restart",
                                                       "hard-restart"]),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
        poll_interval=dict(type="float", default=2.0),
        task_deadline_minutes=dict(type="int"),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True,
                        mutually_exclusive=TARGET_MUTUALLY_EXCLUSIVE, required_one_of=TARGET_REQUIRED_ONE_OF)
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
