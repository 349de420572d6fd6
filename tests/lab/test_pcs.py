"""PCS transitions and power status (records driver): lifecycle, SMD state, errors, abort."""
from __future__ import annotations

import pytest

from conftest import PCS_PREFIX, make_nodes


@pytest.fixture(scope="module")
def site(lab):
    make_nodes(lab, 4, 0)
    return lab


def transition(site, face: str, operation: str, xnames: list[str], **extra) -> dict:
    s = site.session(face)
    resp = s.post(PCS_PREFIX[face] + "/transitions",
                  json={"operation": operation, "location": [{"xname": x} for x in xnames], **extra})
    assert resp.status_code == 200, resp.text  # 200, not 202
    return resp.json()


def states(site, *xnames) -> dict:
    comps = site.session("openchami").get("/hsm/v2/State/Components?" + "&".join(f"id={x}" for x in xnames))
    return {c["ID"]: (c["State"], c["Flag"]) for c in comps.json()["Components"]}


@pytest.mark.parametrize("face", ["openchami", "csm"])
def test_on_off_lifecycle_updates_smd(site, face):
    x = "x1000c0s0b0n0" if face == "openchami" else "x1000c0s1b0n0"
    start = transition(site, face, "ON", [x])  # operations are case-insensitive
    assert start["operation"] == "On" and set(start) == {"transitionID", "operation"}
    done = site.wait_transition(start["transitionID"], face)
    assert done["transitionStatus"] == "completed"
    assert done["taskCounts"] == {"total": 1, "new": 0, "in-progress": 0, "failed": 0, "succeeded": 1,
                                  "un-supported": 0}
    assert done["tasks"][0]["taskStatusDescription"] == "Transition confirmed, On"
    assert states(site, x)[x] == ("Ready", "OK")
    again = site.wait_transition(transition(site, face, "on", [x])["transitionID"], face)
    assert again["tasks"][0]["taskStatusDescription"] == "Component already in desired state"
    status = site.session(face).get(PCS_PREFIX[face] + f"/power-status?xname={x}").json()["status"][0]
    assert status["powerState"] == "on" and status["managementState"] == "available" and status["error"] == ""
    off = site.wait_transition(transition(site, face, "force-off", [x])["transitionID"], face)
    assert off["operation"] == "Force-Off" and off["tasks"][0]["taskStatus"] == "succeeded"
    assert states(site, x)[x] == ("Off", "OK")


def test_transition_errors_per_task(site):
    t = transition(site, "openchami", "soft-restart", ["x1000c0s2b0n0", "x9000c0s0b0n0"])
    done = site.wait_transition(t["transitionID"])
    tasks = {task["xname"]: task for task in done["tasks"]}
    assert tasks["x1000c0s2b0n0"]["taskStatusDescription"] == "Component must be in the On state for Soft-Restart"
    assert tasks["x9000c0s0b0n0"] == {"xname": "x9000c0s0b0n0", "taskStatus": "failed",
                                      "taskStatusDescription": "Failed to achieve transition",
                                      "error": "Missing xname"}
    assert done["taskCounts"]["failed"] == 2 and done["transitionStatus"] == "completed"


def test_node_without_boot_parameters_cannot_power_on(site):
    s = site.session("openchami")
    assert s.delete("/boot/v1/bootparameters", json={"hosts": ["x1000c0s3b0n0"]}).status_code == 200
    done = site.wait_transition(transition(site, "openchami", "on", ["x1000c0s3b0n0"])["transitionID"])
    task = done["tasks"][0]
    assert task["taskStatus"] == "failed" and "no boot parameters for x1000c0s3b0n0" in task["error"]
    assert states(site, "x1000c0s3b0n0")["x1000c0s3b0n0"][0] == "Off"


def test_boot_image_from_bss(site):
    """The image a node boots is read from its BSS kernel URL (records driver remembers it)."""
    s = site.session("openchami")
    s.put("/boot/v1/bootparameters", json={"hosts": ["x1000c0s3b0n0"],
                                           "kernel": "http://x/boot-images/efi-images/compute/v2/vmlinuz-6.1"})
    done = site.wait_transition(transition(site, "openchami", "on", ["x1000c0s3b0n0"])["transitionID"])
    assert done["tasks"][0]["taskStatus"] == "succeeded"
    node = [n for n in site.admin("GET", "/nodes").json()["nodes"] if n["xname"] == "x1000c0s3b0n0"][0]
    assert node["power"] == "on" and node["boot_image"] == "localhost/compute:v2"


def test_deadline_zero_does_not_confirm(site):
    done = site.wait_transition(transition(site, "openchami", "off", ["x1000c0s3b0n0"],
                                           taskDeadlineMinutes=0)["transitionID"])
    assert done["tasks"][0]["taskStatusDescription"] == "Transition applied, Off"


def test_bad_requests(site):
    s = site.session("openchami")
    bad = s.post("/power-control/v1/transitions", json={"operation": "reboot", "location": [{"xname": "x1000c0s0b0n0"}]})
    assert bad.status_code == 400 and bad.json()["detail"] == "invalid Operation type reboot"
    assert bad.headers["Content-Type"] == "application/problem+json" and bad.json()["status"] == 400
    assert s.get("/power-control/v1/transitions/not-a-uuid").status_code == 400
    nf = s.get("/power-control/v1/transitions/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert nf.status_code == 404 and nf.json()["detail"] == "TransitionID does not exist"
    ps = s.post("/power-control/v1/power-status", json={"xname": ["x1000c0s0b0n0", "nid1", "x9999c0s0b0n0"]}).json()
    errors = {i["xname"]: i["error"] for i in ps["status"]}
    assert errors == {"x1000c0s0b0n0": "", "nid1": "Invalid component name.",
                      "x9999c0s0b0n0": "Component not found in component map."}
    filtered = s.get("/power-control/v1/power-status?powerStateFilter=on").json()["status"]
    assert all(i["powerState"] == "on" for i in filtered)
    listing = s.get("/power-control/v1/transitions").json()["transitions"]
    assert listing and all("tasks" not in t and "taskCounts" in t for t in listing)
    # PCS registers every route under /v1 too
    assert s.get("/v1/transitions").status_code == 200


def test_abort(site):
    site.admin("POST", "/seed", json={"nodes": 1500, "groups": 0})
    xnames = [c["ID"] for c in site.session("openchami").get("/hsm/v2/State/Components?state=Ready&role=compute")
              .json()["Components"] if c["ID"].startswith("x11")]
    s = site.session("openchami")
    t = transition(site, "openchami", "off", xnames)
    abort = s.delete(f"/power-control/v1/transitions/{t['transitionID']}")
    assert abort.status_code == 202 and abort.json() == {"abortStatus": "Accepted - abort initiated"}
    done = site.wait_transition(t["transitionID"], timeout=120)
    assert done["transitionStatus"] == "aborted"
    aborted = [task for task in done["tasks"] if task["taskStatusDescription"].startswith("Aborted")]
    assert aborted and done["taskCounts"]["failed"] == len(aborted)
    again = s.delete(f"/power-control/v1/transitions/{t['transitionID']}")
    assert again.status_code == 400 and again.json()["detail"] == \
        "Transition is already finished and cannot be aborted."
    site.admin("DELETE", "/seed")
