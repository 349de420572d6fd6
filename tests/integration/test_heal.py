"""hpc.vcluster.heal on the shared stack vCluster (conftest.py ``stack``: 1 service + 2 compute nodes).

No deployment of its own: heal runs on the stack as it is, and every test leaves it as it found it
(both compute nodes in Slurm), for the modules that run after this one.

* A healthy vCluster: heal changes nothing (changed=0).
* A compute node killed and revived (a crash: it can boot again) is found, reset and runs jobs again:
  proven on test_deploy.py's vCluster, where the node dies in the middle of the deploy (one heal run
  less on this vCluster).
* A node that keeps failing (killed and left dead: the lab's fault switch): heal tries twice, then
  takes it out of the vCluster (drained in Slurm, powered off, out of the label, off the VLAN) and the
  repair request, with what failed and the logs, is in the release store and reaches both hooks (a
  command that writes a file, and a URL: a small HTTP receiver in this test). After ``--revive``,
  ``reintegrate`` brings it back and both compute nodes run jobs again.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from conftest import STACK_NODES
from vc_lab import debug_messages, failed_messages, lab_nodes

KILLED = STACK_NODES["compute"][1]


def heal(stack, check: bool = False, diff: bool = False, extra_vars: dict | None = None, playbook: str = "heal") -> dict:
    """hpc.vcluster.heal (or ``playbook``) on the stack, as an operator (or an AWX schedule) runs it."""
    return stack.run(playbook, check=check, diff=diff, extra_vars=extra_vars)


def said(run: dict) -> str:
    """What heal said it did (its last task), and where its output is."""
    return debug_messages(run, "Say what heal did") + " (output: " + run.get("log", "?") + ")"


def compute_hostnames(stack) -> list[str]:
    names = []
    for index in range(len(STACK_NODES["compute"])):
        proc = stack.ssh("compute", "hostname", index=index, timeout=60)
        assert proc.returncode == 0, proc.stderr
        names.append(proc.stdout.strip())
    return sorted(names)


def srun_hostnames(stack) -> list[str]:
    proc = stack.ssh("service", "timeout 120 srun -N2 hostname", timeout=180)
    assert proc.returncode == 0, f"srun -N2: {proc.stdout}{proc.stderr}"
    return sorted(proc.stdout.split())


@pytest.fixture(scope="module")
def healthy(stack):
    """The stack's compute node host names, once both run jobs (what each test leaves behind)."""
    names = compute_hostnames(stack)
    assert srun_hostnames(stack) == names
    return names


def test_heal_of_a_healthy_vcluster_changes_nothing(stack, healthy):
    run = heal(stack)
    assert run["rc"] == 0, failed_messages(run)
    assert sum(s.get("changed", 0) for s in run["stats"].values()) == 0, run["stats"]
    assert "no failed node" in debug_messages(run, "Triage | say what was found")


class Receiver:
    """A notification hook's URL: an HTTP server on 127.0.0.1 that keeps the JSON bodies POSTed to it."""

    def __init__(self):
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/repair"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def label_members(stack) -> list[str]:
    reply = stack.lab.session().get(stack.lab.url + "/hsm/v2/groups/stack", timeout=30)
    reply.raise_for_status()
    return sorted(reply.json().get("members", {}).get("ids", []))


def test_a_node_that_keeps_failing_is_removed_reported_and_reintegrated(stack, healthy, tmp_path):
    stack.lab.run("fault", "--kill", KILLED)  # and it stays dead: PCS cannot power it on
    written = tmp_path / "requests.jsonl"
    try:
        with Receiver() as receiver:
            run = heal(stack, extra_vars={"vcluster_heal_attempts": 2, "vcluster_repair_hook_url": receiver.url,
                                          "vcluster_repair_hook_command": ["sh", "-c", f"cat >> {written}; echo >> {written}"]})
        assert run["rc"] == 0, (failed_messages(run), run["log"])
        summary = said(run)
        assert "still failing" in summary and KILLED in summary and "healed: none" in summary, summary

        # out of the vCluster: the label, the VLAN, power, Slurm
        assert KILLED not in label_members(stack)
        node = lab_nodes(stack.lab)[KILLED]
        assert node["power"] == "off" and not node["vlans"], node
        state = stack.ssh("service", f"sinfo --noheader --Node --nodes {node['hostname']} --format '%T|%E'", timeout=60)
        assert "vcluster: heal: out for repair" in state.stdout, state.stdout + state.stderr

        # the request: in the store, at both hooks, with what failed and the logs
        assert len(receiver.bodies) == 1, receiver.bodies
        request = receiver.bodies[0]
        assert json.loads(written.read_text().strip()) == request
        assert request["vcluster"] == "stack" and request["node"] == KILLED and request["removed"] is True
        assert any(f.startswith("power") for f in request["found"]), request
        assert len(request["errors"]) == 2 and all("attempt" in e for e in request["errors"]), request["errors"]
        assert request["logs"] and request["time"].endswith("Z"), request
        assert request["key"].split("/", 1)[1].startswith(f"stack/repairs/{KILLED}-"), request["key"]

        # a heal now sees a healthy vCluster of one compute node less
        again = heal(stack)
        assert again["rc"] == 0, failed_messages(again)
        assert "no failed node" in debug_messages(again, "Triage | say what was found")
    finally:
        stack.lab.run("fault", "--revive", KILLED)
        back = heal(stack, extra_vars={"vcluster_reintegrate_nodes": [KILLED]}, playbook="reintegrate")
    assert back["rc"] == 0, (failed_messages(back), back["log"])
    assert KILLED in label_members(stack)
    node = lab_nodes(stack.lab)[KILLED]
    assert node["power"] == "on" and [str(v) for v in node["vlans"]] == ["250"], node
    assert srun_hostnames(stack) == healthy
