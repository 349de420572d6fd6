"""uenv on a vCluster: user environments on SquashFS images, mounted per job by Slurm.

On the stack vCluster (conftest.py ``stack``; examples/vclusters/stack.yml adds the uenv
vService: squashfs-mount, uenv and its Slurm plugin from the lab's site repository at
10.252.0.2, and the lab's uenv image ``uenv-hello`` placed in /srv/uenv/images), directory
users (alice, bob) run the image's program:

- ``srun -N2 --uenv=<image> /user-environment/bin/uenv-hello`` from the service node prints the
  image's line from both compute nodes;
- ``uenv run <image> -- /user-environment/bin/uenv-hello`` on a compute node prints it there, and
  the image is mounted only for that command (not on the node, not on the host, no loop
  device left attached).

The compute nodes are the lab's uenv-capable nodes (conftest.py sets VCLUSTER_LAB_UENV_NODES):
they have CAP_SYS_ADMIN and the loop devices, the service node has neither, and /proc/sys stays
read-only in a capable node.
"""
from __future__ import annotations

import subprocess

IMAGE = "/srv/uenv/images/uenv-hello.sqsh"
PROGRAM = "/user-environment/bin/uenv-hello"
GREETING = "hello from the uenv-hello image"
COMPUTE_HOSTS = ("nid000005", "nid000006")
CAP_SYS_ADMIN = 21


def test_srun_uenv_runs_the_image_program_on_both_compute_nodes(stack):
    proc = stack.user_ssh("alice", "service", f"srun -N2 --uenv={IMAGE} {PROGRAM}", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = sorted(line for line in proc.stdout.splitlines() if line.strip())
    assert lines == [f"{GREETING} on {host}" for host in COMPUTE_HOSTS], proc.stdout + proc.stderr


def test_srun_without_uenv_has_no_image(stack):
    proc = stack.user_ssh("alice", "service", f"srun -N1 sh -c 'test -e {PROGRAM} && echo mounted || echo absent'",
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["absent"], proc.stdout + proc.stderr


def test_uenv_run_on_a_compute_node(stack):
    proc = stack.user_ssh("bob", "compute", f"uenv run {IMAGE} -- {PROGRAM}; ls -A /user-environment | wc -l",
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [f"{GREETING} on {COMPUTE_HOSTS[0]}", "0"], proc.stdout + proc.stderr
    # the image was mounted in the command's own mount namespace: nothing of it on the host
    host = subprocess.run(["findmnt", "-rn", "-t", "squashfs", "-o", "TARGET,SOURCE"], capture_output=True, text=True,
                          check=False)
    assert "/user-environment" not in host.stdout, host.stdout
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False)
    assert "uenv-hello" not in loops.stdout, loops.stdout


def _bounding_set(stack, group: str) -> int:
    proc = stack.ssh(group, "awk '/^CapBnd:/ {print $2}' /proc/1/status")
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip(), 16)


def test_only_the_uenv_capable_nodes_have_sys_admin_and_loop_devices(stack):
    assert _bounding_set(stack, "compute") >> CAP_SYS_ADMIN & 1
    assert not _bounding_set(stack, "service") >> CAP_SYS_ADMIN & 1
    assert stack.ssh("compute", "test -b /dev/loop0 && test -c /dev/loop-control").returncode == 0
    assert stack.ssh("service", "test -e /dev/loop-control").returncode != 0


def test_proc_sys_stays_read_only_in_a_capable_node(stack):
    proc = stack.ssh("compute", "findmnt -rn -o OPTIONS /proc/sys; echo 1 > /proc/sys/kernel/sysrq && echo wrote")
    assert proc.stdout.split()[0].split(",")[0] == "ro", proc.stdout + proc.stderr
    assert "wrote" not in proc.stdout, proc.stdout + proc.stderr
