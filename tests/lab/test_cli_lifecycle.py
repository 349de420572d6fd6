"""The node lifecycle through the real command line, the real PCS API and real SSH.

``vcluster-lab up --nodes 3`` in a private home, port and prefix; one node is powered off
and on again through PCS (HTTPS with a token, as any client does), logged into with the
lab key; the site services ``up`` starts are listed, exported and reachable from a node; and
``vcluster-lab down`` leaves nothing with the lab's labels behind.
The nodes use the NMN range 10.252.0.0/16 (the contract), which one lab at a time can
hold: the test claims it with ``vcluster_lab.nmn_claim``, as the integration tests do.
"""
from __future__ import annotations

import subprocess

import requests

from cli_helpers import Lab, free_port, wait_transition
from podman_helpers import inspect, leftovers, new_prefix, shared_base, teardown

from vcluster_lab import site_services
from vcluster_lab.nmn_claim import claim_nmn
from vcluster_lab.ssh import ssh_argv, sshd_answers, wait_for_login

NODE, NODE_IP = "x1000c0s1b0n0", "10.252.1.2"


def ssh(key: str, ip: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(ssh_argv(key, ip, command), capture_output=True, text=True, timeout=60,
                          check=False)


def test_up_power_cycle_through_pcs_ssh_and_down(tmp_path):
    with claim_nmn():
        up_power_cycle_ssh_and_down(tmp_path)


def up_power_cycle_ssh_and_down(tmp_path):
    lab = Lab(tmp_path / "home", new_prefix(), free_port())
    shared_base()
    try:
        up = lab.run("up", "--nodes", "3", "--port", str(lab.port))
        for xname in ("x1000c0s0b0n0", NODE, "x1000c0s2b0n0"):
            assert xname in up.stdout
        assert "lab up in" in up.stdout
        key = lab.env_json()["VCLUSTER_LAB_SSH_KEY"]
        assert ssh(key, NODE_IP, "hostname").stdout.strip() == "nid000002"

        pcs = lab.session()
        power = f"{lab.url}/power-control/v1"
        reply = pcs.post(f"{power}/transitions",
                         json={"operation": "Off", "location": [{"xname": NODE}]})
        assert reply.status_code == 200, reply.text
        done = wait_transition(pcs, lab.url, reply.json()["transitionID"])
        assert done["tasks"][0]["taskStatus"] == "succeeded", done
        state = pcs.get(f"{power}/power-status", params={"xname": NODE}).json()
        assert state["status"][0]["powerState"] == "off"
        assert inspect(f"{lab.prefix}-{NODE}", "{{.State.Status}}") in ("exited", "stopped")
        assert not sshd_answers(NODE_IP, timeout=1)

        reply = pcs.post(f"{power}/transitions",
                         json={"operation": "On", "location": [{"xname": NODE}]})
        done = wait_transition(pcs, lab.url, reply.json()["transitionID"])
        assert done["tasks"][0]["taskStatus"] == "succeeded", done
        state = pcs.get(f"{power}/power-status", params={"xname": NODE}).json()
        assert state["status"][0]["powerState"] == "on"
        wait_for_login(key, {NODE: NODE_IP}, timeout=60)
        login = ssh(key, NODE_IP, "hostname; systemctl is-system-running --wait")
        assert login.stdout.split() == ["nid000002", "running"], login.stderr

        # The fault "node dies": its container is killed, PCS cannot power it on until revived.
        lab.run("fault", "--kill", NODE)
        assert inspect(f"{lab.prefix}-{NODE}", "{{.State.Status}}") in ("exited", "stopped")
        reply = pcs.post(f"{power}/transitions",
                         json={"operation": "On", "location": [{"xname": NODE}]})
        done = wait_transition(pcs, lab.url, reply.json()["transitionID"])
        assert done["tasks"][0]["taskStatus"] == "failed", done
        lab.run("fault", "--revive", NODE)
        reply = pcs.post(f"{power}/transitions",
                         json={"operation": "On", "location": [{"xname": NODE}]})
        done = wait_transition(pcs, lab.url, reply.json()["transitionID"])
        assert done["tasks"][0]["taskStatus"] == "succeeded", done
        wait_for_login(key, {NODE: NODE_IP}, timeout=60)

        status = lab.run("status").stdout
        assert f"{NODE}" in status and "server: https://127.0.0.1" in status
        # the site services up started (every one of the catalogue): listed with their URLs,
        # exported by env, reachable
        known = site_services.catalogue()
        assert f"site services: {len(known)}" in status, status
        for name, service in known.items():
            assert f"  {name:8} {service.address:12} running" in status, status
        env = lab.env_json()
        assert env["VCLUSTER_LAB_REPO_URL"] == "http://10.252.0.2/"
        assert requests.get(env["VCLUSTER_LAB_REPO_SOURCES_URL"], timeout=30).status_code == 200
        # the site DNS's API takes the lab's key (the server holds only its hash)
        assert env["VCLUSTER_DNS_API_URL"] == "http://10.252.0.4:8081"
        assert requests.get(env["VCLUSTER_DNS_API_URL"] + "/api/v1/servers/localhost", timeout=30,
                            headers={"X-API-Key": env["VCLUSTER_DNS_API_KEY"]}).status_code == 200
        assert ssh(key, NODE_IP, "python3 -c \"import urllib.request as u; "
                   "print(u.urlopen('http://10.252.0.2/sources/').status)\"").stdout.strip() == "200"
    finally:
        down = lab.run("down", check=False)
        left = leftovers(lab.prefix)
        if any(left.values()):
            teardown(lab.prefix)
    assert down.returncode == 0, down.stderr
    assert "server: stopped" in down.stdout
    assert f"{lab.prefix}-site-repo" in down.stdout and f"{lab.prefix}-site-dns" in down.stdout
    assert not any(left.values()), f"vcluster-lab down left {left}"
