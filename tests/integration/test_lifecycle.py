"""A vCluster's life on the lab: one deployment (1 service + 4 compute nodes), reused by every check here.

Proves, with real playbooks, nodes, Slurm and the site's S3 store (the lab's, through the OpenCHAMI face):
- an unchanged re-run changes nothing and does not apply the vServices again, and yet a file and a daemon
  changed by hand on a node are put back (drift);
- a config-only Slurm change is applied by reconfigure: slurmctld's and slurmd's pids stay the same, and the
  history holds the deploy and the update.
Each node group boots its own image here (the service node and the computes: life:1, from one recipe each).
The image update under a job stream, the failed batch and its rollback, and deploy --limit are checked on a
branch that has not landed yet (docs/update.md says so).
"""
from __future__ import annotations

import base64

import pytest
import yaml

from vc_lab import failed_messages, playbook, run_site_playbook, site_play

NAME = "life"
SERVICE = "x3000c0s0b0n0"
COMPUTES = ["x1000c0s%db0n0" % i for i in range(4)]
JOBCOMP_LOG = "/var/log/slurm/jobcomp.log"
# slurmctld runs this at the end of every job (JobCompType=jobcomp/script): one line per job
JOBCOMP_SCRIPT = base64.b64encode(f'#!/bin/sh\necho "$JOBID $JOBSTATE $EXITCODE $NODES" >> {JOBCOMP_LOG}\n'.encode()).decode()


def recipe(tmp_path, tag: str, broken: bool = False) -> str:
    cmds = [{"cmd": f"echo {JOBCOMP_SCRIPT} | base64 -d > /usr/local/sbin/jobcomp-log && chmod 0755 /usr/local/sbin/jobcomp-log"},
            {"cmd": f"echo life-{tag} > /etc/vcluster-image"}]
    if broken:
        cmds.append({"cmd": "chmod 0644 /usr/sbin/slurmd"})  # slurmd cannot start on this image
    path = tmp_path / f"life-{tag}.yml"
    path.write_text(yaml.safe_dump({"options": {"name": "life", "publish_tags": [tag], "pkg_manager": "apt",
                                                "parent": "localhost/slurm-node:2026.11"}, "cmds": cmds}))
    return str(path)


def manifest(tmp_path, compute_tag: str = "1", max_time: str = "01:00:00", broken: bool = False) -> str:
    doc = {
        "apiVersion": "hpc.vcluster/v1", "name": NAME, "description": "lifecycle test vCluster",
        "nodes": {"service": {"count": 1, "select": {"role": "Service"}},
                  "compute": {"count": 4, "select": {"role": "Compute"},
                              "image": {"name": "life", "tag": compute_tag,
                                        "recipe": recipe(tmp_path, compute_tag, broken)}}},
        "image": {"name": "life", "tag": "1", "recipe": recipe(tmp_path, "1")},
        "network": {"vlan": 240},
        "vservices": [{"name": "slurm", "version": "1.0", "config": {
            "partitions": [{"name": "batch", "default": True, "max_time": max_time}],
            "config": {"JobCompType": "jobcomp/script", "JobCompLoc": "/usr/local/sbin/jobcomp-log"}}}],
    }
    path = tmp_path / f"life-{compute_tag}-{max_time.replace(':', '')}.yml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


class Life:
    """The deployed vCluster: run playbooks on it, talk to its nodes."""

    def __init__(self, lab, tmp_path):
        self.lab, self.tmp = lab, tmp_path
        self.ips = {x: n["ip"] for x, n in self.nodes().items()}

    def nodes(self) -> dict:
        reply = self.lab.session().get(self.lab.url + "/lab/v1/nodes", timeout=30)
        reply.raise_for_status()
        return {n["xname"]: n for n in reply.json()["nodes"]}

    def run(self, name: str, expect_ok: bool = True, **kw) -> dict:
        result = run_site_playbook(self.lab, "openchami", name, self.tmp, **kw)
        if expect_ok:
            assert result["rc"] == 0, failed_messages(result)
        return result

    def sh(self, xname: str, command: str, timeout: float = 60) -> str:
        proc = self.lab.ssh(self.ips[xname], command, timeout=timeout)
        assert proc.returncode == 0, f"{xname}: {command}: {proc.stderr}{proc.stdout}"
        return proc.stdout.strip()

    def ctl(self, command: str, timeout: float = 60) -> str:
        return self.sh(SERVICE, command, timeout)

    def history(self) -> list[dict]:
        out = playbook(self.lab, "openchami", site_play(f"""
- name: history
  hpc.vcluster.vcluster_info:
    name: {NAME}
"""))
        return out["tasks"]["history"]["history"]


def changed_hosts(result: dict) -> dict:
    return {host: s["changed"] for host, s in result["stats"].items() if s.get("changed")}


@pytest.fixture(scope="module")
def life(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("life")
    first = run_site_playbook(lab, "openchami", "deploy", tmp, extra_vars={"vcluster_manifest": manifest(tmp)})
    assert first["rc"] == 0, failed_messages(first)
    instance = Life(lab, tmp)
    instance.first = first
    try:
        yield instance
    finally:
        instance.run("destroy", expect_ok=False, extra_vars={"vcluster_manifest": manifest(tmp)})
        from test_deploy import restore_nodes
        restore_nodes(lab)


def test_rerun_changes_nothing_skips_the_vservices_and_repairs_drift(life):
    m = {"vcluster_manifest": manifest(life.tmp)}
    recorded = len(life.history())
    again = life.run("deploy", extra_vars=m)
    assert changed_hosts(again) == {}
    applied = again["tasks"]["Apply each vService on its node groups"]
    assert applied and all(r.get("skipped") for r in applied.values()), applied
    assert len(life.history()) == recorded  # nothing new to record

    # drift: a file changed and a daemon stopped by hand
    life.sh(COMPUTES[1], "echo 'SLURMD_OPTIONS=--bogus' > /etc/default/slurmd && systemctl stop munge")
    repaired = life.run("deploy", extra_vars=m)
    assert "nid000002" in changed_hosts(repaired), changed_hosts(repaired)
    assert "--bogus" not in life.sh(COMPUTES[1], "cat /etc/default/slurmd")
    assert life.sh(COMPUTES[1], "systemctl is-active munge slurmd").split() == ["active", "active"]
    assert changed_hosts(life.run("deploy", extra_vars=m)) == {}


def test_config_only_slurm_change_is_a_reconfigure(life):
    pids = "systemctl show -p MainPID --value {}"
    before = (life.ctl(pids.format("slurmctld")), life.sh(COMPUTES[0], pids.format("slurmd")))
    out = life.run("update", extra_vars={"vcluster_manifest": manifest(life.tmp, max_time="00:45:00")})
    changes = next(iter(out["tasks"]["Classify the changes"].values()))["ansible_facts"]["vcluster_vservice_changes"]
    assert changes == [{"name": "slurm", "change": "reconfigure", "detail": "config: partitions"}]
    assert "MaxTime=00:45:00" in life.ctl("scontrol show partition batch")
    assert (life.ctl(pids.format("slurmctld")), life.sh(COMPUTES[0], pids.format("slurmd"))) == before
    assert [r["operation"] for r in life.history()][-2:] == ["deploy", "update"]
