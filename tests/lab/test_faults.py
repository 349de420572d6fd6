"""Fault switches: latency, error rate, token lifetime, dead nodes; at start and at run time."""
from __future__ import annotations

import time

import jwt
import pytest

from conftest import make_nodes


@pytest.fixture(scope="module")
def site(lab):
    make_nodes(lab, 2, 0, power_on=True)
    return lab


@pytest.fixture(autouse=True)
def clean_faults(site):
    yield
    site.admin("DELETE", "/faults")


def timed(fn) -> float:
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def test_latency_and_jitter(site):
    s = site.session("openchami")
    # 1.5 s: the admin API's answer must come well before that even on a machine busy with
    # other test steps (make test runs the lab tests beside the static checks and Molecule)
    put = site.admin("PUT", "/faults", json={"latency_ms": 1500})
    assert put.status_code == 200 and put.json()["latency_ms"] == 1500
    assert timed(lambda: s.get("/hsm/v2/groups")) >= 1.5
    assert timed(lambda: site.admin("GET", "/status")) < 1.0  # the admin API is never slowed
    site.admin("PUT", "/faults", json={"latency_ms": 0, "jitter_ms": 200})
    times = [timed(lambda: s.get("/hsm/v2/service/ready")) for attempt in range(10)]
    assert max(times) > 0.05 and max(times) - min(times) > 0.02


def test_error_rate_fails_before_any_change(site):
    s = site.session("openchami")
    site.admin("PUT", "/faults", json={"error_rate": 1.0})
    resp = s.post("/hsm/v2/groups", json={"label": "never"})
    assert resp.status_code in (500, 503) and resp.headers["Content-Type"] == "application/problem+json"
    assert "fault injection" in resp.json()["detail"]
    assert site.admin("GET", "/status").status_code == 200  # admin unaffected
    site.admin("PUT", "/faults", json={"error_rate": 0.5, "error_codes": [503]})
    codes = {s.get("/hsm/v2/service/ready").status_code for attempt in range(60)}
    assert codes == {200, 503}
    site.admin("PUT", "/faults", json={"error_rate": 0})
    assert s.get("/hsm/v2/groups/never").status_code == 404  # the failed POST changed nothing


def test_bad_fault_settings(site):
    assert site.admin("PUT", "/faults", json={"error_rate": 2}).status_code == 400
    assert site.admin("PUT", "/faults", json={"error_codes": [418]}).status_code == 400
    assert site.admin("PUT", "/faults", json={"colour": "red"}).status_code == 400
    assert site.admin("PUT", "/faults", json={"dead_nodes": ["x9999c0s0b0n0"]}).status_code == 404


def test_token_lifetime_at_run_time(site):
    site.admin("PUT", "/faults", json={"token_lifetime": 7})
    c = jwt.decode(site.token(), options={"verify_signature": False})
    assert c["exp"] - c["iat"] == 7


def test_dead_node(site):
    x = "x1000c0s1b0n0"
    s = site.session("openchami")
    assert site.admin("POST", f"/nodes/{x}/kill").json() == {"xname": x, "dead": True}
    comp = s.get(f"/hsm/v2/State/Components/{x}").json()
    assert (comp["State"], comp["Flag"]) == ("Standby", "Alert")
    assert site.admin("GET", "/faults").json()["dead_nodes"] == [x]
    node = [n for n in site.admin("GET", "/nodes").json()["nodes"] if n["xname"] == x][0]
    assert node["dead"] and node["power"] == "off"
    tid = s.post("/power-control/v1/transitions", json={"operation": "on", "location": [{"xname": x}]}).json()
    task = site.wait_transition(tid["transitionID"])["tasks"][0]
    assert task["taskStatus"] == "failed" and task["taskStatusDescription"] == "Failed to achieve transition"
    assert site.admin("POST", f"/nodes/{x}/revive").json() == {"xname": x, "dead": False}
    comp = s.get(f"/hsm/v2/State/Components/{x}").json()
    assert (comp["State"], comp["Flag"]) == ("Off", "OK")
    tid = s.post("/power-control/v1/transitions", json={"operation": "on", "location": [{"xname": x}]}).json()
    assert site.wait_transition(tid["transitionID"])["tasks"][0]["taskStatus"] == "succeeded"
    # the same through PUT /faults
    assert site.admin("PUT", "/faults", json={"dead_nodes": [x]}).json()["dead_nodes"] == [x]
    assert s.get(f"/hsm/v2/State/Components/{x}").json()["State"] == "Standby"
    assert site.admin("PUT", "/faults", json={"dead_nodes": []}).status_code == 200
    assert s.get(f"/hsm/v2/State/Components/{x}").json()["Flag"] == "OK"


def test_faults_at_start(lab_server_factory):
    server = lab_server_factory(faults={"latency_ms": 150, "error_codes": [502]},
                                env={"VCLUSTER_LAB_FAULT_TOKEN_LIFETIME": "60"})
    got = server.admin("GET", "/faults").json()
    assert got["latency_ms"] == 150 and got["error_codes"] == [502] and got["token_lifetime"] == 60
    assert timed(lambda: server.get("/hsm/v2/State/Components")) >= 0.15
