"""The container stack on a vCluster: enroot, pyxis, podman and CDI, from the site's repository.

On the stack vCluster (conftest.py ``stack``: slurm, enroot, pyxis, podman, cdi deployed by
hpc.vcluster.deploy through the OpenCHAMI face, enroot and pyxis installed from the lab's
site package repository at 10.252.0.2), an unprivileged user (made here on the nodes until
the IAM vService exists):

- fetches a SquashFS image of another OS (Debian trixie) the lab built, on both compute
  nodes through Slurm, and runs ``srun -N2 --container-image=<it> cat /etc/os-release``:
  both nodes print the image's OS, not the node's (bookworm);
- runs ``podman run --device hpe.com/cxi=cxi0 ...`` rootless on a compute node and sees the
  device (the lab's stand-in for a Slingshot NIC) and the spec's environment inside.

Then a second deploy changes nothing, and a second ``vcluster-lab up`` builds no package.
"""
from __future__ import annotations

import shlex

import pytest
from vc_lab import NODES, failed_messages

USER, UID = "vcuser", 3001
IMAGES = "http://10.252.0.2/images"


def as_user(stack, group: str, command: str, index: int = 0, timeout: float = 600):
    """``command`` run by the test user in a login shell on a node of ``group``."""
    proc = stack.ssh(group, f"su - {USER} -c {shlex.quote(command)}", index=index, timeout=timeout)
    assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def user(stack):
    """A local unprivileged user with the same UID on every node of the stack (useradd gives it sub-IDs)."""
    for group, ips in stack.ips.items():
        for index in range(len(ips)):
            proc = stack.ssh(group, f"id {USER} >/dev/null 2>&1 || useradd -m -u {UID} -s /bin/bash {USER}",
                             index=index)
            assert proc.returncode == 0, proc.stderr
    return USER


def test_srun_runs_the_image_on_two_nodes(stack, user):
    fetched = as_user(stack, "service", f"srun -N2 sh -c 'curl -sf -o /tmp/trixie.sqsh {IMAGES}/debian-trixie.sqsh "
                                        "&& sha256sum /tmp/trixie.sqsh'")
    sums = {line.split()[0] for line in fetched.splitlines() if line.strip()}
    assert len(sums) == 1, fetched
    out = as_user(stack, "service", "srun -N2 --container-image=/tmp/trixie.sqsh cat /etc/os-release")
    names = [line for line in out.splitlines() if line.startswith("PRETTY_NAME=")]
    assert names == ['PRETTY_NAME="Debian GNU/Linux 13 (trixie)"'] * 2, out
    node_os = as_user(stack, "service", "srun -N2 cat /etc/os-release")
    assert node_os.count('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"') == 2, node_os
    # the job ran as the user, on both compute nodes
    who = as_user(stack, "service", "srun -N2 --container-image=/tmp/trixie.sqsh sh -c 'echo $(id -un) $SLURMD_NODENAME'")
    assert sorted(who.split("\n")[:2]) == sorted(f"{USER} {h}" for h in ("nid000005", "nid000006")), who


def test_podman_gives_the_cdi_device_and_its_environment(stack, user):
    out = as_user(stack, "compute",
                  f"podman import --quiet {IMAGES}/debian-trixie.tar localhost/trixie:it >/dev/null && "
                  "podman run --rm --device hpe.com/cxi=cxi0 localhost/trixie:it "
                  "sh -c 'stat -c \"%F %a\" /dev/cxi0; echo $FI_PROVIDER $HPC_VCLUSTER_CDI_DEVICES; "
                  ". /etc/os-release; echo $VERSION_CODENAME'")
    assert out.splitlines() == ["character special file 666", "cxi cxi0", "trixie"], out
    spec = stack.ssh("compute", "cat /etc/cdi/hpe.com-cxi.json").stdout
    assert '"kind": "hpe.com/cxi"' in spec and '"name": "all"' in spec
    # the service node has no Slingshot stand-in: no spec there
    assert stack.ssh("service", "test ! -e /etc/cdi/hpe.com-cxi.json").returncode == 0


def test_packages_came_from_the_site_repository(stack):
    policy = stack.ssh("compute", "apt-cache policy enroot nvslurm-plugin-pyxis").stdout
    assert policy.count("http://10.252.0.2/debian bookworm/main") >= 2, policy
    pyxis = stack.ssh("service", "dpkg-query -W -f='${Version}' nvslurm-plugin-pyxis; echo; srun --version").stdout
    version, slurm = pyxis.split()[0], pyxis.split()[-1]
    assert version.endswith(f"+slurm{slurm}"), pyxis


def test_second_deploy_changes_nothing(stack):
    again = stack.deploy()
    assert again["rc"] == 0, failed_messages(again)
    changed = {host: s["changed"] for host, s in again["stats"].items() if s["changed"]}
    assert changed == {}, f"second deploy changed something: {changed}"
    # the play reached the stack's nodes (controller steps run on the play's first host)
    assert {"nid000005", "nid000006"} <= set(again["stats"]), again["stats"]
    # the vServices that watch their files were not applied again (every node hashes as recorded);
    # network, whose records live on the site DNS, was: it checks them at every run
    tasks = again["tasks"]
    for watched in ("Config | the drop-in (paths and settings)", "Plugstack | the drop-in (the plugin and its options)",
                    "Config | storage.conf (rootless storage per user, node-local)", "Munge | munged runs",
                    "Plugstack | the uenv drop-in"):
        assert all(r.get("skipped") for r in tasks.get(watched, {}).values()), (watched, tasks.get(watched))
    assert any(not r.get("skipped") for r in tasks["Resolver | resolv.conf"].values()), tasks["Resolver | resolv.conf"]


def test_second_lab_start_builds_no_package(stack):
    proc = stack.lab.run("up", "--nodes", str(max(NODES, 4) + 2), "--service-nodes", "2",
                         "--port", str(stack.lab.port))
    assert "site repository: nothing to build" in proc.stdout, proc.stdout
    assert "building" not in proc.stdout, proc.stdout
