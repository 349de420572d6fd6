"""Users on the vCluster: the iam vService against the lab's site directory.

On the stack vCluster (conftest.py ``stack``: examples/vclusters/stack.yml, whose ``iam``
vService admits the directory group hpc-users), with the lab's directory (slapd at
10.252.0.3, LDAPS under the lab's CA, seeded with alice and bob in hpc-users, alice also in
hpc-admins, mallory only in outsiders):

- alice logs in over SSH with the key the directory holds for her (no key of hers is on the
  node), ``id`` shows her directory groups, her home was made at the login;
- as alice, ``srun -N2 id -un`` prints her name from both compute nodes (slurmd resolves her
  through SSSD there) and the job runs with her UID;
- mallory resolves on the nodes (the directory is read) but is refused at login, with her
  own valid key: access is the allowed groups', not the directory's;
- the bind password of the site's directory is in no output of the stack's first deploy (at -vvvv).
"""
from __future__ import annotations

import pytest

ALICE_UID = 5001


@pytest.fixture(scope="module")
def directory(stack):
    env = stack.lab.env()
    users = env["VCLUSTER_LAB_LDAP_USERS"].split(",")
    assert {"alice", "bob", "mallory"} <= set(users), users
    return env


def test_directory_user_logs_in_with_the_key_from_the_directory(stack, directory):
    # no authorized_keys of alice's on the node: the key can only come from the directory
    assert stack.ssh("service", "test ! -e /home/alice/.ssh/authorized_keys").returncode == 0
    proc = stack.user_ssh("alice", "service", "id; echo HOME=$HOME; test -d $HOME && stat -c '%U %a' $HOME")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"uid={ALICE_UID}(alice)" in out, out
    assert "hpc-users" in out and "hpc-admins" in out and "outsiders" not in out, out
    assert "HOME=/home/alice" in out and "alice 700" in out, out


def test_srun_as_a_directory_user_runs_as_that_user_on_both_compute_nodes(stack, directory):
    proc = stack.user_ssh("alice", "service", "srun -N2 sh -c 'echo $(id -un) $(id -u) $SLURMD_NODENAME'",
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = sorted(line for line in proc.stdout.splitlines() if line.strip())
    assert lines == sorted(f"alice {ALICE_UID} {h}" for h in ("nid000005", "nid000006")), proc.stdout


def test_user_outside_the_allowed_groups_is_refused(stack, directory):
    # mallory exists in the directory and resolves on the node...
    resolved = stack.ssh("compute", "getent passwd mallory && id -Gn mallory")
    assert resolved.returncode == 0 and "outsiders" in resolved.stdout, resolved.stdout + resolved.stderr
    # ... and her key is valid, but she is not in hpc-users: refused on every group's nodes
    for group in ("service", "compute"):
        proc = stack.user_ssh("mallory", group, "id")
        assert proc.returncode != 0 and "uid=" not in proc.stdout, (group, proc.stdout)
    # bob, in hpc-users, gets in on a compute node too
    bob = stack.user_ssh("bob", "compute", "id -un")
    assert bob.returncode == 0 and bob.stdout.strip() == "bob", bob.stderr


def test_bind_password_is_in_no_deploy_output(stack, directory):
    password = directory["VCLUSTER_IAM_BIND_PASSWORD"]
    assert len(password) >= 12
    assert "ESTABLISH" in stack.output, "the stack's deploy log is not at -vvvv"
    assert password not in stack.output
    # on the nodes it is only in the root-only drop-in SSSD reads
    found = stack.ssh("compute", "stat -c '%a %U' /etc/sssd/conf.d/50-hpc-vcluster-iam-bind.conf")
    assert found.stdout.strip() == "600 root", found.stdout + found.stderr
