"""A job as AWX runs it: ansible-runner, a private data dir, and only what the credentials inject.

AWX starts a job template's playbook with ansible-runner in a private data directory:
``project/`` (the project checkout: the wrapper playbook, the manifests, an ansible.cfg),
``inventory/`` (what the inventory source gave), ``env/extravars`` (the launch's variables),
``env/envvars`` (the credentials' injected variables), ``env/ssh_key`` (the Machine
credential). This test builds that directory from the shipped credential type, the
shipped project wrappers and the collection built as the execution environment installs
it, then runs ``ansible-runner run`` in a process whose environment has nothing else (no
VCLUSTER_*, no ANSIBLE_*, no ansible.cfg of the checkout), deploys a vCluster on the lab,
reads the run's artifacts (status, rc, changed hosts, no secret in any job event), destroys
it the same way, and runs it once more with one credential input missing: the job fails
with a message that names what is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from awx_credential import inject
from vc_lab import ROOT, restore_nodes

BIN = Path(sys.executable).parent
SITE_TYPE = next(t for t in yaml.safe_load((ROOT / "extensions" / "awx" / "credential_types.yml").read_text())
                 ["credential_types"] if t["name"] == "hpc.vcluster site")
MANIFEST = {"name": "awxjob", "description": "deployed as an AWX job would",
            "nodes": {"compute": {"count": 1, "select": {"role": "Compute"}}},
            "image": {"name": "vclab-base", "tag": "bookworm"}, "boot": {"timeout": 240}}
# an inventory source file as a site keeps it in its project: the connection comes from the credential
INVENTORY_SOURCE = {"plugin": "hpc.vcluster.openchami", "compose": {"ansible_user": "'root'"}}


def execution_environment(tmp: Path) -> Path:
    """The collections of the execution environment: hpc.vcluster built and installed, and its dependencies."""
    dest = tmp / "ee-collections"
    build = tmp / "build"
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", build, ROOT], check=True,
                   capture_output=True, text=True)
    config = tmp / "empty.cfg"
    config.write_text("[defaults]\n")
    subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", dest,
                    next(build.glob("hpc-vcluster-*.tar.gz"))], check=True, capture_output=True, text=True,
                   env=dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_COLLECTIONS_PATH=str(dest)))
    for name in ("ansible/posix", "community/general"):
        shutil.copytree(ROOT / ".collections" / "ansible_collections" / name, dest / "ansible_collections" / name)
    return dest


def site_inputs(lab) -> dict:
    """The site credential an AWX admin would fill in for the lab (OpenCHAMI face, client credentials)."""
    client_id, client_secret = lab.credentials()["openchami"]["client_id"], lab.credentials()["openchami"]["client_secret"]
    env = lab.env()
    return {"site_kind": "openchami", "api_url": lab.url, "site_name": "lab", "client_id": client_id,
            "client_secret": client_secret, "ca_bundle": Path(env["VCLUSTER_CA_PATH"]).read_text(),
            # the release records go to the site's S3 store (MinIO's static keys on OpenCHAMI)
            "s3_url": env["VCLUSTER_S3_URL"], "s3_access_key": env["VCLUSTER_S3_ACCESS_KEY"],
            "s3_secret_key": env["VCLUSTER_S3_SECRET_KEY"]}


def job(lab, tmp: Path, name: str, playbook: str, inputs: dict, collections: Path) -> dict:
    """Run ``playbook`` as an AWX job template would; the run's artifacts."""
    private = tmp / name
    project = private / "project"
    shutil.copytree(ROOT / "extensions" / "awx" / "project", project)
    # AWX puts the project's collections first; here they are the execution environment's
    os.symlink(collections / "ansible_collections", project / "collections" / "ansible_collections")
    (project / "ansible.cfg").write_text("[defaults]\nhost_key_checking = False\n")
    (project / "vclusters").mkdir()
    (project / "vclusters" / "awxjob.yml").write_text(yaml.safe_dump(MANIFEST))
    (private / "inventory").mkdir()
    (private / "inventory" / "site.openchami.yml").write_text(yaml.safe_dump(INVENTORY_SOURCE))
    envvars = inject(SITE_TYPE, inputs, private)
    (private / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    (private / "env" / "extravars").write_text(yaml.safe_dump({"vcluster_manifest": "vclusters/awxjob.yml"}))
    (private / "env" / "ssh_key").write_text(Path(lab.env()["VCLUSTER_LAB_SSH_KEY"]).read_text())
    # nothing from this process: a PATH to the EE's programs, a HOME, a locale. The HOME is short, as
    # an EE's /runner is: ssh's ControlPath sockets live under it and a socket path has 107 bytes at most.
    home = tempfile.mkdtemp(prefix="awxh")
    process_env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}
    try:
        proc = subprocess.run([BIN / "ansible-runner", "run", private, "-p", playbook, "--ident", name],
                              env=process_env, capture_output=True, text=True, timeout=1200, check=False)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    artifacts = private / "artifacts" / name
    events = [json.loads(p.read_text()) for p in sorted((artifacts / "job_events").glob("*.json"))]
    stats = next((e["event_data"] for e in events if e["event"] == "playbook_on_stats"), {})
    failed = [e["event_data"]["res"].get("msg", "") for e in events if e["event"] == "runner_on_failed"]
    return {"rc": proc.returncode, "status": (artifacts / "status").read_text().strip(),
            "stdout": (artifacts / "stdout").read_text(), "events": events, "stats": stats, "failed": failed,
            "envvars": envvars, "runner": proc.stdout + proc.stderr}


def test_deploy_and_destroy_as_awx_jobs(lab, tmp_path):
    collections = execution_environment(tmp_path)
    inputs = site_inputs(lab)
    secrets = (inputs["client_secret"], inputs["s3_secret_key"])
    try:
        deploy = job(lab, tmp_path, "deploy", "deploy.yml", inputs, collections)
        assert deploy["status"] == "successful" and deploy["rc"] == 0, (deploy["failed"], deploy["stdout"][-3000:])
        # the controller steps run once, on the first host of the play (localhost or a site node)
        assert sum(deploy["stats"]["changed"].values()) > 0, deploy["stats"]
        assert "localhost" in deploy["stats"]["ok"], deploy["stats"]
        for event in deploy["events"]:
            assert not any(s in json.dumps(event) for s in secrets), f"secret in job event {event['event']}"
        assert not any(s in deploy["stdout"] for s in secrets)
        # the job knew the site only from the credential: no other VCLUSTER_* was set
        assert {k for k in deploy["envvars"] if k.startswith("VCLUSTER_")} == set(SITE_TYPE["injectors"]["env"])
        groups = lab.session().get(lab.url + "/hsm/v2/groups/awxjob", timeout=30)
        assert groups.status_code == 200 and len(groups.json()["members"]["ids"]) == 1

        again = job(lab, tmp_path, "deploy-again", "deploy.yml", inputs, collections)
        assert again["status"] == "successful", again["failed"]
        assert sum(again["stats"]["changed"].values()) == 0, again["stats"]["changed"]

        destroy = job(lab, tmp_path, "destroy", "destroy.yml", inputs, collections)
        assert destroy["status"] == "successful", destroy["failed"] or destroy["stdout"][-3000:]
        assert lab.session().get(lab.url + "/hsm/v2/groups/awxjob", timeout=30).status_code == 404
        for event in destroy["events"]:
            assert not any(s in json.dumps(event) for s in secrets)

        # one input missing (the client's secret): the job fails at the first site call and says why
        partial = {k: v for k, v in inputs.items() if k != "client_secret"}
        broken = job(lab, tmp_path, "missing", "deploy.yml", partial, collections)
        assert broken["status"] == "failed" and broken["rc"] != 0
        assert any("client_secret" in msg for msg in broken["failed"]), broken["failed"] or broken["stdout"][-3000:]
        assert "Traceback" not in broken["stdout"]
        assert lab.session().get(lab.url + "/hsm/v2/groups/awxjob", timeout=30).status_code == 404
    finally:
        restore_nodes(lab)
