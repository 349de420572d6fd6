"""hpc.vcluster.reconcile on the shared stack vCluster (conftest.py ``stack``: 1 service + 2 compute nodes).

No deployment of its own. A free compute node of the lab (one of x1000c0s0-3, which other modules use
at other times) is added to the stack's label by hand (the node_group module, as an operator on the
management plane would), then removed the same way; reconcile follows each time:

* ``--check --diff`` names the joiner and changes nothing on the site;
* reconcile: the node runs a job of ``srun -N3``, and the other compute nodes' slurmd pids are unchanged;
* a second reconcile changes nothing (changed=0);
* removed from the label by hand while a job runs on it, then reconcile: the job completes (the drain
  waits for it), the node is not in Slurm any more, powered off, off
  the VLAN, its boot parameters gone; the stack is as it was (two compute nodes, idle) and the node as
  found (powered off, in no label, no boot parameters), for the modules that run after this one.
"""
from __future__ import annotations

import pytest
from conftest import STACK_NODES
from vc_lab import debug_messages, failed_messages, lab_nodes, playbook, site_play, site_state

CANDIDATES = ["x1000c0s3b0n0", "x1000c0s2b0n0", "x1000c0s1b0n0", "x1000c0s0b0n0"]


def reconcile(stack, check: bool = False, diff: bool = False) -> dict:
    """hpc.vcluster.reconcile on the stack's manifest (its output kept: ``run["log"]``)."""
    return stack.run("reconcile", check=check, diff=diff, extra_vars={"vcluster_drain_timeout": 120})


def changed(run: dict) -> int:
    return sum(s.get("changed", 0) for s in run["stats"].values())


def label_members(stack) -> list[str]:
    reply = stack.lab.session().get(stack.lab.url + "/hsm/v2/groups/stack", timeout=30)
    reply.raise_for_status()
    return sorted(reply.json().get("members", {}).get("ids", []))


def node_labels(stack, xname: str) -> list[str]:
    reply = stack.lab.session().get(stack.lab.url + f"/hsm/v2/memberships/{xname}", timeout=30)
    reply.raise_for_status()
    return reply.json().get("groupLabels") or []


def boot_params(stack, xname: str) -> list:
    reply = stack.lab.session().get(stack.lab.url + "/boot/v1/bootparameters", params={"name": xname}, timeout=30)
    if reply.status_code == 404:
        return []
    reply.raise_for_status()
    return [e for e in reply.json() or [] if xname in (e.get("hosts") or [])]


def set_label(stack, members: list[str]) -> None:
    """The stack's label holds ``members``: what an operator does by hand on the management plane."""
    playbook(stack.lab, "openchami", site_play(f"""
- name: the stack's label, by hand
  hpc.vcluster.node_group:
    label: stack
    members: {sorted(members)}
"""))


def slurmd_pids(stack) -> list[str]:
    pids = []
    for index in range(len(STACK_NODES["compute"])):
        proc = stack.ssh("compute", "systemctl show --property MainPID --value slurmd", index=index, timeout=60)
        assert proc.returncode == 0, proc.stderr
        pids.append(proc.stdout.strip())
    assert all(p and p != "0" for p in pids), pids
    return pids


def slurm_version(stack) -> tuple:
    proc = stack.ssh("service", "sinfo --version", timeout=60)
    assert proc.returncode == 0, proc.stderr
    return tuple(int(p) for p in proc.stdout.split()[-1].split(".")[:2])


def sinfo(stack) -> dict:
    proc = stack.ssh("service", "sinfo --noheader --Node --format '%N|%T'", timeout=60)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("|", 1) for line in proc.stdout.split())


@pytest.fixture(scope="module")
def joiner(stack):
    """A free compute node of the lab (in no label); left as found, whatever happened."""
    nodes = lab_nodes(stack.lab)
    free = [x for x in CANDIDATES if x in nodes and not node_labels(stack, x)]
    assert free, f"no free compute node among {CANDIDATES}: a module before this one left them in a label"
    xname = free[0]
    was_on = nodes[xname]["power"] == "on"
    yield xname
    if xname in label_members(stack):  # a test failed in the middle: take it out again
        set_label(stack, [x for x in label_members(stack) if x != xname])
        run = reconcile(stack)
        assert run["rc"] == 0, (failed_messages(run), run["log"])
    assert not node_labels(stack, xname) and not boot_params(stack, xname)
    if not was_on:
        assert lab_nodes(stack.lab)[xname]["power"] == "off"


def test_a_node_added_to_the_label_by_hand_joins(stack, joiner):
    names_before = sinfo(stack)
    assert len(names_before) == 2 and all(s == "idle" for s in names_before.values()), names_before
    pids = slurmd_pids(stack)
    set_label(stack, label_members(stack) + [joiner])

    before = site_state(stack.lab)
    run = reconcile(stack, check=True, diff=True)
    assert run["rc"] == 0, (failed_messages(run), run["log"])
    said = debug_messages(run, "Reconcile | say what changes")
    assert f"joining: {joiner} (node group compute" in said and "leaving: none" in said, said
    assert site_state(stack.lab) == before, "check mode changed the site"

    run = reconcile(stack)
    assert run["rc"] == 0, (failed_messages(run), run["log"])
    node = lab_nodes(stack.lab)[joiner]
    assert node["power"] == "on" and [str(v) for v in node["vlans"]] == ["250"], node
    assert boot_params(stack, joiner), "no boot parameters"
    proc = stack.ssh("service", "timeout 180 srun -N3 hostname", timeout=240)
    assert proc.returncode == 0, f"srun -N3: {proc.stdout}{proc.stderr} ({run['log']})"
    assert node["hostname"] in proc.stdout.split(), proc.stdout
    # on Slurm < 23.11 (the lab's 22.05) slurmctld restarts for a new node list; the other nodes' slurmd
    # re-read it (scontrol reconfigure) and keep running
    assert slurmd_pids(stack) == pids, f"the other compute nodes' slurmd restarted (Slurm {slurm_version(stack)})"

    again = reconcile(stack)
    assert again["rc"] == 0, (failed_messages(again), again["log"])
    assert changed(again) == 0, (again["stats"], again["log"])


def test_a_node_removed_from_the_label_by_hand_leaves(stack, joiner):
    assert joiner in label_members(stack), "the join test did not leave the node in the label"
    hostname = lab_nodes(stack.lab)[joiner]["hostname"]
    # a job on the leaver, running when the node leaves: the drain lets it finish
    job = stack.ssh("service", f"sbatch --parsable -w {hostname} -J leaving --wrap 'sleep 20'", timeout=60)
    assert job.returncode == 0 and job.stdout.strip().isdigit(), job.stdout + job.stderr
    jobid = job.stdout.strip()
    pids = slurmd_pids(stack)
    set_label(stack, [x for x in label_members(stack) if x != joiner])

    run = reconcile(stack, check=True, diff=True)
    assert run["rc"] == 0, (failed_messages(run), run["log"])
    said = debug_messages(run, "Reconcile | say what changes")
    assert f"leaving: {joiner} (removed from the label" in said, said

    run = reconcile(stack)
    assert run["rc"] == 0, (failed_messages(run), run["log"])
    ended = stack.ssh("service", f"sacct -n -X -P -o State,NodeList -j {jobid}", timeout=60)
    assert ended.stdout.split() == [f"COMPLETED|{hostname}"], ended.stdout + ended.stderr
    node = lab_nodes(stack.lab)[joiner]
    assert node["power"] == "off" and not node["vlans"], node
    assert not boot_params(stack, joiner), boot_params(stack, joiner)
    assert not node_labels(stack, joiner)
    state = sinfo(stack)
    assert hostname not in state, state
    assert len(state) == 2, state
    assert slurmd_pids(stack) == pids, "the other compute nodes' slurmd restarted"
    proc = stack.ssh("service", "timeout 180 srun -N2 hostname", timeout=240)
    assert proc.returncode == 0, f"srun -N2: {proc.stdout}{proc.stderr}"
