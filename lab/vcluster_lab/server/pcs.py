"""PCS (Power Control Service): transitions and power status.

Mounted at ``/power-control/v1`` and ``/v1`` (OpenCHAMI: PCS's own JWT check; liveness,
readiness and health public) and ``/apis/power-control/v1`` (CSM gateway). POST
/transitions answers 200 (not 202) with the capitalised operation; DELETE aborts with
202; power-status always answers 200 with a per-item ``error``. Errors are RFC 7807 with
``status`` (the spec's ``statusCode`` is not what the service sends).
"""
from __future__ import annotations

import re
import time

from flask import Blueprint, request

from . import hsm
from . import xname as xn
from .common import ApiError, check_face_auth, empty, json_body, lab, query, reply
from .power import NODE_TRANSITIONS, OPERATIONS, rfc3339

bp = Blueprint("pcs", __name__)
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _bad_json(msg: str) -> ApiError:
    return ApiError(400, "Unable to parse request: " + msg)


@bp.before_request
def _auth():
    public = request.path.rstrip("/").rsplit("/", 1)[-1] in ("liveness", "readiness", "health")
    return check_face_auth(public=public)


@bp.get("/liveness")
def liveness():
    return empty(204)


@bp.get("/readiness")
def readiness():
    return empty(204)


@bp.get("/health")
def health():
    return reply({"KvStore": "connected, responsive", "StateManager": "connected, responsive",
                  "BackgroundTaskStatus": "running", "TaskRunner": {"Mode": "local"}, "VaultStatus": "disabled"})


@bp.post("/transitions")
def transitions_post():
    data = json_body(_bad_json)
    if not isinstance(data, dict):
        raise _bad_json("body is not an object")
    op = str(data.get("operation", ""))
    if op.lower() not in OPERATIONS:
        raise ApiError(400, f"invalid Operation type {op}")
    locs = data.get("location")
    if not isinstance(locs, list) or not locs:
        raise ApiError(400, "location is empty: nothing to transition")
    xnames = []
    for loc in locs:
        if not isinstance(loc, dict) or not loc.get("xname"):
            raise ApiError(400, "location entries need an xname")
        xnames.append(xn.normalize(str(loc["xname"])))
    deadline = data.get("taskDeadlineMinutes", 5)
    if not isinstance(deadline, int) or isinstance(deadline, bool) or deadline < -1:
        raise ApiError(400, "taskDeadlineMinutes must be an integer >= -1")
    tid = lab().power.submit(op, xnames, deadline)
    return reply({"transitionID": tid, "operation": OPERATIONS[op.lower()]},
                 headers={"Location": f"../transitions/{tid}"})


@bp.get("/transitions")
def transitions_get():
    return reply({"transitions": lab().power.all_json()})


@bp.get("/transitions/<tid>")
def transition_get(tid: str):
    if not UUID.match(tid):
        raise ApiError(400, "Invalid transition ID")
    t = lab().power.transition_json(tid)
    if t is None:
        raise ApiError(404, "TransitionID does not exist")
    return reply(t)


@bp.delete("/transitions/<tid>")
def transition_abort(tid: str):
    if not UUID.match(tid):
        raise ApiError(400, "Invalid transition ID")
    prev = lab().power.abort(tid)
    if prev is None:
        raise ApiError(404, "TransitionID does not exist")
    if prev in ("completed", "aborted"):
        raise ApiError(400, "Transition is already finished and cannot be aborted.")
    return reply({"abortStatus": "Accepted - abort initiated"}, 202)


# ---------------------------------------------------------------------------- power status
def _status(xnames: list[str], power_filter: str, mgmt_filter: str) -> list[dict]:
    now = rfc3339(time.time())
    with lab().store.read() as c:
        if xnames:
            wanted = [xn.normalize(x) for x in xnames]
            rows = hsm.select_rows(c, hsm.CompFilter(), [w for w in wanted if xn.is_valid(w)])
        else:
            wanted = None
            rows = c.execute(f"{hsm.SELECT} WHERE type='Node' ORDER BY id").fetchall()
    known = {r[0]: r for r in rows}
    states = lab().driver.power_state(list(known)) if known else {}
    out = []
    for x in (wanted if wanted is not None else list(known)):
        if not xn.is_valid(x):
            item = {"xname": x, "powerState": "undefined", "managementState": "unavailable",
                    "error": "Invalid component name.", "supportedPowerTransitions": [], "lastUpdated": ""}
        elif x not in known:
            item = {"xname": x, "powerState": "undefined", "managementState": "unavailable",
                    "error": "Component not found in component map.", "supportedPowerTransitions": [],
                    "lastUpdated": ""}
        else:
            p = states.get(x, "undefined")
            item = {"xname": x, "powerState": "on" if p == "on" else "off", "managementState": "available",
                    "error": "", "supportedPowerTransitions": list(NODE_TRANSITIONS), "lastUpdated": now}
        if power_filter and item["powerState"] != power_filter:
            continue
        if mgmt_filter and item["managementState"] != mgmt_filter:
            continue
        out.append(item)
    return out


def _filters(power: str, mgmt: str) -> tuple[str, str]:
    power, mgmt = (power or "").lower(), (mgmt or "").lower()
    if power and power not in ("on", "off", "undefined"):
        raise ApiError(400, f"invalid PowerStateFilter type: {power}")
    if mgmt and mgmt not in ("available", "unavailable"):
        raise ApiError(400, f"invalid ManagementStateFilter type: {mgmt}")
    return power, mgmt


@bp.get("/power-status")
def power_status_get():
    q = query()
    power, mgmt = _filters((q.get("powerstatefilter") or [""])[0], (q.get("managementstatefilter") or [""])[0])
    return reply({"status": _status(q.get("xname", []), power, mgmt)})


@bp.post("/power-status")
def power_status_post():
    data = json_body(_bad_json)
    if not isinstance(data, dict):
        raise _bad_json("body is not an object")
    unknown = set(data) - {"xname", "powerStateFilter", "managementStateFilter"}
    if unknown:
        raise _bad_json(f"unknown fields {sorted(unknown)}")
    xnames = data.get("xname") or []
    if not isinstance(xnames, list):
        raise _bad_json("xname must be a list")
    power, mgmt = _filters(data.get("powerStateFilter", ""), data.get("managementStateFilter", ""))
    return reply({"status": _status([str(x) for x in xnames], power, mgmt)})
