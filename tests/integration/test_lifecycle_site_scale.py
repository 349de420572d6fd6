"""The lifecycle playbooks on a site with many more nodes than the vCluster: only the controller and the
vCluster's hosts run plays (not every host of the site), and deploy, update and destroy run whole.

A records-only lab of its own (tools/bench_lab.py: no containers, no NMN range, so no nmn_claim lock), seeded
with more nodes than the vCluster takes. Records nodes have no SSH: the nodes' plays run with
``ansible_connection=local``, so what this checks is the plays and the plan reaching the nodes' plays, with
a vCluster that has no vService (the fingerprint of nothing, an update without Slurm) and a rolling update
of two nodes one at a time (a serial play's later batch).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from bench_lab import BIN, Lab, ansible_env  # noqa: E402  pylint: disable=wrong-import-position

SITE_NODES = 200
MANIFEST = {"name": "wide", "nodes": {"compute": {"count": 2, "select": {"role": "Compute"}}},
            "image": {"name": "vclab-base", "tag": "bookworm"}, "boot": {"timeout": 60}}
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = tmp_path_factory.mktemp("site-scale")
    lab = Lab(work / "lab")
    try:
        lab.start(SITE_NODES, 4)
        env = ansible_env(**lab.client_env("openchami"))
        source = work / "site.openchami.yml"
        source.write_text("plugin: hpc.vcluster.openchami\n")
        yield lab, env, source, work
    finally:
        lab.stop()


def run(site, playbook: str, manifest: dict) -> tuple[str, dict]:
    lab, env, source, work = site
    path = work / ("%s.json" % playbook)
    path.write_text(json.dumps(manifest))
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(source), "hpc.vcluster." + playbook,
         "-e", "vcluster_manifest=%s" % path, "-e", "vcluster_releases=false", "-e", "ansible_connection=local",
         "-e", "ansible_python_interpreter=%s" % (BIN / "python")],
        env=env, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recap = {host: (int(unreachable), int(failed)) for host, unreachable, failed in RECAP.findall(done.stdout)}
    return done.stdout, recap


def test_deploy_update_destroy_play_on_the_controller_and_the_vcluster_only(site):
    lab, env, _source, _work = site
    out, recap = run(site, "deploy", MANIFEST)
    members = sorted(h for h in recap if h != "localhost")
    # 2 of the site's 200 hosts: the planning and recording plays ran on localhost, not on all
    assert len(members) == 2 and "localhost" in recap, recap
    assert all(v == (0, 0) for v in recap.values()), recap
    assert "vCluster wide: 2 nodes" in out

    out, recap = run(site, "update", dict(MANIFEST, kernel_params="console=ttyS0 quiet"))
    assert sorted(h for h in recap if h != "localhost") == members, recap
    # both nodes rebooted, one batch after the other (serial: 1)
    assert re.search(r"rebooted into the new image: x\S+, x\S+\"", out), out[-3000:]
    batches = re.findall(r"PLAY \[Roll the compute nodes into the new image\]", out)
    assert len(batches) == 2, out[-3000:]

    _out, recap = run(site, "destroy", dict(MANIFEST, kernel_params="console=ttyS0 quiet"))
    assert sorted(h for h in recap if h != "localhost") == members, recap
    session = requests.Session()
    session.trust_env = False
    gone = session.get(lab.url + "/hsm/v2/groups/wide", verify=str(lab.ca_path),
                       headers={"Authorization": "Bearer " + env["LAB_ACCESS_TOKEN"]}, timeout=60)
    assert gone.status_code == 404, gone.text
