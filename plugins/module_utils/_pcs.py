# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for PCS, the Power Control Service (same contract on OpenCHAMI and CSM).

A transition is asynchronous: ``POST /transitions`` answers **200** (not 202) with an id,
and the caller polls ``GET /transitions/{id}`` until ``transitionStatus`` is ``completed``
or ``aborted``. Per-node outcomes are in ``tasks``; the count of unsupported tasks is
spelled ``un-supported``. ``/power-status`` always answers 200 and reports unknown nodes
through a per-item ``error`` (research-openchami.md §5, research-csm.md §6). Status is read
with ``POST /power-status`` (the xnames in the body): one request whatever the node count.
"""
from __future__ import annotations

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, decode_json
from ansible_collections.hpc.vcluster.plugins.module_utils._wait import wait_for

OPERATIONS = ("on", "off", "soft-off", "soft-restart", "hard-restart", "init", "force-off")
END_STATE_OPERATIONS = frozenset(("on", "off", "soft-off", "force-off"))
FINISHED = ("completed", "aborted")
TASK_COUNT_KEYS = ("total", "new", "in-progress", "failed", "succeeded", "un-supported")


class PcsClient(object):
    def __init__(self, transport, base_url):
        self.transport = transport
        self.base = base_url

    def power_status(self, xnames):
        """``{xname: status item}`` for ``xnames`` (items carry powerState, managementState, error)."""
        result = {}
        xnames = sorted(set(xnames))
        if xnames:
            body = decode_json(self.transport.request("POST", self.base + "/power-status", service="pcs",
                                                      json_body={"xname": xnames}, idempotent=True), "pcs") or {}
            for item in body.get("status") or []:
                result[item.get("xname")] = item
        for xname in xnames:
            result.setdefault(xname, {"xname": xname, "powerState": "undefined", "managementState": "unavailable",
                                      "error": "not reported by PCS"})
        return result

    def transition(self, operation, xnames, deadline_minutes=None):
        """Start a transition; returns its id."""
        operation = operation.lower()
        if operation not in OPERATIONS:
            raise ValueError("unknown PCS operation %r" % operation)
        body = {"operation": operation, "location": [{"xname": x} for x in sorted(xnames)]}
        if deadline_minutes is not None:
            body["taskDeadlineMinutes"] = int(deadline_minutes)
        # on, off, soft-off and force-off ask for an end state: sent twice, they do no more than once, so a
        # 500 is retried; a restart or init sent twice would restart twice, so those are not
        reply = decode_json(self.transport.request("POST", self.base + "/transitions", service="pcs", json_body=body,
                                                   idempotent=operation in END_STATE_OPERATIONS), "pcs") or {}
        transition_id = reply.get("transitionID")
        if not transition_id:
            raise ApiError("PCS POST /transitions: the reply has no transitionID")
        return transition_id

    def get_transition(self, transition_id):
        return self.transport.get_json(self.base + "/transitions/%s" % transition_id, service="pcs") or {}

    def abort(self, transition_id):
        self.transport.request("DELETE", self.base + "/transitions/%s" % transition_id, service="pcs",
                               expect=(200, 202, 400))

    def wait(self, transition_id, timeout, interval=2.0, sleep=None, clock=None):
        """Poll until the transition is completed or aborted; raises WaitTimeout with the last reply."""
        kwargs = {}
        if sleep is not None:
            kwargs["sleep"] = sleep
        if clock is not None:
            kwargs["clock"] = clock
        return wait_for(lambda: self.get_transition(transition_id),
                        lambda t: t.get("transitionStatus") in FINISHED,
                        timeout=timeout, interval=interval,
                        what="PCS transition %s" % transition_id, **kwargs)


def task_results(transition):
    """``{xname: {status, description, error}}`` from a transition reply."""
    results = {}
    for task in transition.get("tasks") or []:
        results[task.get("xname")] = {
            "status": task.get("taskStatus"),
            "description": task.get("taskStatusDescription") or "",
            "error": task.get("error") or "",
        }
    return results


def task_counts(transition):
    counts = transition.get("taskCounts") or {}
    return dict((key, int(counts.get(key) or 0)) for key in TASK_COUNT_KEYS)
