"""A vCluster's life on the lab: one deployment (1 service + 4 compute nodes), reused by every check here.

Proves, with real playbooks, nodes, Slurm and the site's S3 store (the lab's, through the OpenCHAMI face):
- an unchanged re-run changes nothing, does not apply the vServices again and skips the label, boot,
  network and power steps (the site hashes as the latest release recorded), and yet a file and a daemon
  changed by hand on a node are put back, and so is a node's port taken off the VLAN by hand (drift);
- a config-only Slurm change is applied by reconfigure: slurmctld's and slurmd's pids stay the same, and the
  history holds the deploy and the update;
- an image update of every compute node, batch by batch, while a stream of short jobs and a long job run:
  every job submitted before and during it completes (counted by slurmctld's job completion log), every
  compute node runs the new image (read on the node), and the history holds both releases;
- an update to an image on which slurmd cannot start stops at its first batch, the other nodes keep the old
  release and run jobs, rollback brings the failed batch back, and the history shows the three releases;
- deploy with --limit on one compute node acts on that node only.
Each node group boots its own image here (the service node keeps life:1 while the computes change).
"""
from __future__ import annotations

import base64
import json
import threading
import time

import pytest
import yaml

from vc_lab import ROOT, failed_messages, playbook, run_site_playbook, site_play

NAME = "life"
SERVICE = "x3000c0s0b0n0"
COMPUTES = ["x1000c0s%db0n0" % i for i in range(4)]
JOBCOMP_LOG = "/var/log/slurm/jobcomp.log"
#: the steps an unchanged re-run skips (the plan step found the site as the latest release recorded)
SITE_STEPS = ("Label the nodes", "Set the boot parameters of each node group", "Put the nodes on their VLAN", "Power on the nodes")
# slurmctld runs this at the end of every job (JobCompType=jobcomp/script): one line per job, job|state|exit|nodes
JOBCOMP_SCRIPT = base64.b64encode(f'#!/bin/sh\necho "$JOBID|$JOBSTATE|$EXITCODE|$NODES" >> {JOBCOMP_LOG}\n'.encode()).decode()


def recipe(tmp_path, tag: str, broken: bool = False) -> str:
    cmds = [{"cmd": f"echo {JOBCOMP_SCRIPT} | base64 -d > /usr/local/sbin/jobcomp-log && chmod 0755 /usr/local/sbin/jobcomp-log"},
            {"cmd": f"echo life-{tag} > /etc/vcluster-image"}]
    if broken:
        cmds.append({"cmd": "chmod 0644 /usr/sbin/slurmd"})  # slurmd cannot start on this image
    path = tmp_path / f"life-{tag}.yml"
    path.write_text(yaml.safe_dump({"options": {"name": "life", "publish_tags": [tag], "pkg_manager": "apt",
                                                "parent": "localhost/slurm-node:2026.11"}, "cmds": cmds}))
    return str(path)


def build_images(lab, *recipes: str) -> None:
    """The images the lifecycle's recipes build on: slurm-node (their parent) first, then ``recipes``.

    Cached by the image module, so this costs nothing when an earlier test of the session built them;
    it lets this module (and make bench-lifecycle) run alone.
    """
    paths = [str(ROOT / "examples" / "images" / "slurm-node.yml"), *recipes]
    playbook(lab, "openchami", site_play("""
- name: images
  hpc.vcluster.image:
    recipe_file: "{{ item }}"
  loop: %s
""" % json.dumps(paths)))


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
    build_images(lab)
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
    # the site holds what the release recorded (its hash): the label, boot, network and power steps were skipped
    for step in SITE_STEPS:
        assert again["tasks"].get(step) and all(r.get("skipped") for r in again["tasks"][step].values()), (
            step, again["tasks"].get(step))

    # drift on the site: a compute node's edge port taken off the vCluster's VLAN by hand (the fabric manager's API)
    fabric = life.lab.url + "/apis/fabric-manager/fabric"
    ports = life.lab.session().get(fabric + "/ports", params={"expand": "true"}, timeout=30).json()["documents"]
    link, port = next((k, d) for k, d in ports.items() if d.get("dst_port") == COMPUTES[2] + "h0")
    policy = f"/fabric/port-policies/{NAME}"
    assert policy in port["portPolicyLinks"], port
    reply = life.lab.session().patch(fabric + "/ports/" + link.rsplit("/", 1)[1], timeout=30,
                                     json={"portPolicyLinks": [p for p in port["portPolicyLinks"] if p != policy]})
    assert reply.status_code < 300, reply.text
    moved = life.run("deploy", extra_vars=m)
    network = next(iter(moved["tasks"]["Put the nodes on their VLAN"].values()))
    assert network.get("changed") and COMPUTES[2] in network["segment"]["members"], network
    port = life.lab.session().get(fabric + "/ports/" + link.rsplit("/", 1)[1], timeout=30).json()
    assert policy in port["portPolicyLinks"], port
    assert 240 in [int(v) for v in life.nodes()[COMPUTES[2]]["vlans"]], life.nodes()[COMPUTES[2]]
    assert len(life.history()) == recorded  # the site is back to what the release recorded

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


def submit(life, command: str, *options: str) -> str:
    return life.ctl(f"sbatch --parsable --no-requeue --output=/dev/null {' '.join(options)} --wrap '{command}'")


LONG_RELEASE = "/var/tmp/life-long-job-may-end"


def test_image_update_loses_no_job(life):
    """Jobs before and during an image update of every compute node all complete.

    The long job runs on nid000001 (first batch) until its node has been drained for a while: it ends when
    the test, having seen the node DRAINING with the job on it, tells it to (a file on the node). So the
    drain step must wait for it, whatever the machine's speed; then it completes normally.
    """
    life.ctl(f"rm -f {JOBCOMP_LOG}")
    life.sh(COMPUTES[0], f"rm -f {LONG_RELEASE}")
    long_job = submit(life, f"while [ ! -e {LONG_RELEASE} ]; do sleep 1; done", "-w", "nid000001")
    submitted = [long_job] + [submit(life, "sleep 2") for _job in range(4)]
    stop = threading.Event()
    errors: list[str] = []
    seen_draining = []

    def stream():
        while not stop.is_set():
            try:
                submitted.append(submit(life, "sleep 3"))
            except AssertionError as exc:  # sbatch refused: slurmctld did not take a job
                errors.append(str(exc))
            stop.wait(4)

    def release_long_job():
        while not stop.is_set():
            state = life.ctl("sinfo --noheader --Node --nodes nid000001 --format %T")
            running = life.ctl(f"squeue --noheader --jobs {long_job} --format %T")
            if state.startswith("draining") and running == "RUNNING":
                seen_draining.append(state)
                stop.wait(15)  # the drain step waits all this while
                life.sh(COMPUTES[0], f"touch {LONG_RELEASE}")
                return
            stop.wait(3)

    threads = [threading.Thread(target=stream), threading.Thread(target=release_long_job)]
    for thread in threads:
        thread.start()
    try:
        out = life.run("update", extra_vars={"vcluster_manifest": manifest(life.tmp, "2", max_time="00:45:00"),
                                             "vcluster_batch_size": 2, "vcluster_drain_timeout": 900})
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert seen_draining, "nid000001 was never seen draining with the long job running on it"
    drained = out["tasks"]["Drain the nodes (no new job starts there)"]
    assert len(drained) == 2 and all(r.get("changed") for r in drained.values()), drained
    # every job ends; then slurmctld's completion log holds each exactly once, COMPLETED
    deadline = time.monotonic() + 300
    while life.ctl("squeue --noheader --format %i") and time.monotonic() < deadline:
        time.sleep(5)
    lines = [line.split("|") for line in life.ctl(f"cat {JOBCOMP_LOG}").splitlines()]
    ended = {}
    for job, state, *_rest in lines:
        ended.setdefault(job, []).append(state)
    assert sorted(ended) == sorted(submitted), f"submitted {len(submitted)}, ended {len(ended)}"
    assert all(states == ["COMPLETED"] for states in ended.values()), {j: s for j, s in ended.items() if s != ["COMPLETED"]}
    assert len(submitted) >= 10
    assert [line[3] for line in lines if line[0] == long_job] == ["nid000001"]
    for xname in COMPUTES:
        assert life.sh(xname, "cat /etc/vcluster-image") == "life-2"
    assert life.sh(SERVICE, "cat /etc/vcluster-image") == "life-1"
    history = life.history()
    # both releases: this update's, and the one before it (the reconfigure's update, or the deploy when run alone)
    assert (history[-1]["operation"], history[-1]["result"]) == ("update", "success")
    assert history[-2]["result"] == "success" and history[-2]["operation"] in ("deploy", "update")
    assert history[-1]["images"]["compute"]["tag"] == "2" and history[-2]["images"]["compute"]["tag"] == "1"
    assert all(n["release"] == history[-1]["seq"] for n in history[-1]["nodes"].values())


def test_failed_batch_stops_the_update_and_rollback_brings_it_back(life):
    # a batch gets a minute to become healthy (slurmd registered, its daemons running), not the default five
    out = life.run("update", expect_ok=False,
                   extra_vars={"vcluster_manifest": manifest(life.tmp, "3", max_time="00:45:00", broken=True),
                               "vcluster_batch_size": 1, "vcluster_health_timeout": 60, "slurm_wait_timeout": 60})
    assert out["rc"] != 0
    rolled = out["tasks"]["Drain the nodes (no new job starts there)"]
    assert len(rolled) == 1, f"the update went on after its first batch failed: {rolled}"
    assert life.ctl("sinfo --noheader --Node --nodes nid000001 --format %T").startswith("drain")
    assert life.sh(COMPUTES[0], "cat /etc/vcluster-image") == "life-3"
    for xname in COMPUTES[1:]:
        assert life.sh(xname, "cat /etc/vcluster-image") == "life-2"
    # the others still serve jobs
    serving = sorted(life.ctl("srun -N3 -x nid000001 hostname", timeout=120).split())
    assert serving == ["nid000002", "nid000003", "nid000004"]
    failed = life.history()[-1]
    assert failed["result"] == "failed" and failed["message"].startswith("batch nid000001 failed"), failed["message"]
    assert "nid000002, nid000003, nid000004 still run the previous release" in failed["message"], failed["message"]
    assert failed["nodes"][COMPUTES[0]]["release"] == failed["seq"]
    assert failed["nodes"][COMPUTES[1]]["release"] == failed["seq"] - 1

    back = life.run("rollback", extra_vars={"vcluster_name": NAME})
    assert next(iter(back["tasks"]["Sort the nodes that need a reboot"].values()))["ansible_facts"]["vcluster_reboot"] \
        == [COMPUTES[0]]
    for xname in COMPUTES:
        assert life.sh(xname, "cat /etc/vcluster-image") == "life-2"
    assert sorted(life.ctl("srun -N4 hostname", timeout=120).split()) == ["nid00000%d" % i for i in range(1, 5)]
    history = life.history()
    assert [(r["operation"], r["result"]) for r in history[-3:]] == [("update", "success"), ("update", "failed"),
                                                                     ("rollback", "success")]
    assert history[-1]["manifest_digest"] == history[-3]["manifest_digest"]


def test_deploy_with_limit_acts_on_one_compute_node(life):
    rollback_manifest = life.history()[-1]
    assert rollback_manifest["images"]["compute"]["tag"] == "2"
    m = manifest(life.tmp, "2", max_time="00:45:00")
    life.sh(COMPUTES[2], "systemctl stop slurmd")  # drift on the limited node
    life.sh(COMPUTES[3], "systemctl stop slurmd")  # and on one outside the limit
    out = life.run("deploy", extra_vars={"vcluster_manifest": m}, limit="nid000003")
    hosts = set(out["stats"]) - {"localhost"}
    assert hosts == {"nid000003"}, out["stats"]
    boot = out["tasks"]["Set the boot parameters of each node group"]
    assert all(r.get("skipped") or r.get("nodes") == [COMPUTES[2]] for r in boot.values()
               for r in (r.get("results") or [r])), boot
    assert life.sh(COMPUTES[2], "systemctl is-active slurmd") == "active"
    assert life.lab.ssh(life.ips[COMPUTES[3]], "systemctl is-active slurmd").stdout.strip() == "inactive"
