"""hpc.vcluster.heal on the shared stack vCluster (conftest.py ``stack``: 1 service + 2 compute nodes).

No deployment of its own: heal runs on the stack as it is, and every test leaves it as it found it
(both compute nodes in Slurm), for the modules that run after this one.

* A healthy vCluster: heal changes nothing (changed=0).
* A compute node killed in service (``vcluster-lab fault --kill``): the lab keeps a killed node dead
  (PCS refuses to power it on) until ``--revive``; killed then revived, it is a node that crashed and
  can boot again. ``heal --check --diff`` names it and changes nothing; ``heal`` finds it (power off,
  SMD Off), powers it on, applies its vServices, and it runs jobs again (``srun -N2``).
"""
from __future__ import annotations

import json

import pytest
from conftest import STACK_NODES
from vc_lab import failed_messages, lab_nodes, run_site_playbook

KILLED = STACK_NODES["compute"][1]


def heal(stack, check: bool = False, diff: bool = False, extra_vars: dict | None = None) -> dict:
    """hpc.vcluster.heal on the stack's manifest, as an operator (or an AWX schedule) runs it."""
    return run_site_playbook(stack.lab, "openchami", "heal", stack.workdir, check=check, diff=diff,
                             extra_vars={"vcluster_manifest": str(stack.manifest), **(extra_vars or {})})


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


def debug_lines(run: dict, task: str) -> str:
    return json.dumps([r.get("msg") for r in run["tasks"].get(task, {}).values()])


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
    assert "no failed node" in debug_lines(run, "Triage | say what was found")


def test_a_killed_compute_node_is_found_reset_and_runs_jobs_again(stack, healthy):
    stack.lab.run("fault", "--kill", KILLED)
    stack.lab.run("fault", "--revive", KILLED)  # it may boot again: a crash, not a broken node
    assert lab_nodes(stack.lab)[KILLED]["power"] != "on"

    checked = heal(stack, check=True, diff=True)
    assert checked["rc"] == 0, failed_messages(checked)
    found = debug_lines(checked, "Triage | say what was found")
    assert KILLED in found and "power: off" in found, found
    assert lab_nodes(stack.lab)[KILLED]["power"] != "on", "heal --check powered the node on"

    run = heal(stack)
    assert run["rc"] == 0, failed_messages(run)
    summary = debug_lines(run, "Say what heal did")
    assert f"healed: {KILLED}" in summary, summary
    assert lab_nodes(stack.lab)[KILLED]["power"] == "on"
    proc = stack.ssh("compute", "systemctl is-active slurmd munge", index=1, timeout=60)
    assert proc.stdout.split() == ["active", "active"], proc.stdout + proc.stderr
    assert srun_hostnames(stack) == healthy
