"""A fleet from one controller: two lab sites, one inventory source listing both, one run.

The sites list (what the ``hpc.vcluster fleet`` AWX credential injects as
VCLUSTER_INVENTORY_SITES) is the only site description the run gets: the inventory source
lists both sites' nodes from it, and each vCluster's plays get the module_defaults of the
site its manifest names. The same manifest, its ``site`` field aside, deploys a vCluster on
each site in one ``ansible-playbook`` run, with the same VLAN id on both; RBAC is per site
(a site whose credential may not manage the label refuses it, the other does not); each
site keeps its own release record; one more run destroys both.
"""
from __future__ import annotations

import json
import os
import subprocess

import yaml

from vc_lab import CONTAINERS_CONF, PLAYBOOK, ROOT, playbook, restore_nodes, site_play

# VLAN: one no other test of the session uses (the stack vCluster, alive all session, has 250)
NAME, VLAN = "fleet", 225
MANIFEST = {"name": NAME, "description": "one manifest, two sites",
            "nodes": {"compute": {"count": 1, "select": {"role": "Compute"}}},
            "image": {"name": "vclab-base", "tag": "bookworm"}, "network": {"vlan": VLAN}}


def site_entry(site, name: str, allowed: list[str]) -> dict:
    creds = site.credentials()["csm"]   # CSM face: each site's release store comes from its own STS
    return {"name": name, "site_kind": "csm", "api_url": site.url, "client_id": creds["client_id"],
            "client_secret": creds["client_secret"], "ca_path": site.env()["VCLUSTER_CA_PATH"],
            "allowed_labels": allowed}


def fleet_run(lab, second_site, tmp_path, playbook: str, sites: list, check: bool = False) -> subprocess.CompletedProcess:
    """One ansible-playbook run of ``playbook`` (imports), the fleet only in VCLUSTER_INVENTORY_SITES."""
    keys = {"lab": lab.env()["VCLUSTER_LAB_SSH_KEY"], "site-b": second_site.env()["VCLUSTER_LAB_SSH_KEY"]}
    source = {"plugin": "hpc.vcluster.csm",
              "compose": {"ansible_user": "'root'",
                          "ansible_ssh_private_key_file": f"'{keys['lab']}' if vcluster_site == 'lab' else '{keys['site-b']}'"}}
    (tmp_path / "fleet.csm.yml").write_text(yaml.safe_dump(source))
    for site in ("lab", "site-b"):
        (tmp_path / f"{NAME}-{site}.yml").write_text(yaml.safe_dump(dict(MANIFEST, site=site)))
    (tmp_path / "run.yml").write_text(playbook)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCLUSTER_", "LAB_"))}
    env.update({"VCLUSTER_INVENTORY_SITES": json.dumps(sites), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "CONTAINERS_CONF": CONTAINERS_CONF,
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts")})
    argv = [PLAYBOOK, "-i", str(tmp_path / "fleet.csm.yml"), str(tmp_path / "run.yml")] + (["--check"] if check else [])
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=1800, check=False)


def imports(playbook: str) -> str:
    return "---\n" + "".join(f"""- name: {playbook} on {site}
  ansible.builtin.import_playbook: hpc.vcluster.{playbook}
  vars:
    vcluster_manifest: {NAME}-{site}.yml
""" for site in ("lab", "site-b"))


def members(site) -> list[str]:
    reply = site.session().get(site.url + f"/hsm/v2/groups/{NAME}", timeout=30)
    return reply.json()["members"]["ids"] if reply.status_code == 200 else []


def latest_release(site) -> dict | None:
    """The vCluster's latest release record in ``site``'s own store (CSM face: through its STS)."""
    out = playbook(site, "csm", site_play(f"- name: latest\n  hpc.vcluster.vcluster_info:\n    name: {NAME}\n"))
    return out["tasks"]["latest"]["latest"]


def test_one_run_two_sites(lab, second_site, tmp_path):
    secret_b = second_site.credentials()["csm"]["client_secret"]
    try:
        # RBAC per site: site-b's credential may not manage the label. The run deploys on lab (its plays come
        # first and its credential allows the label), then stops at site-b's label step: site-b unchanged.
        # (Not with --check: in check mode the boot step's node-level access check reads the label's current
        # members, so a new vCluster is refused under an allow-list; see docs/awx.md, known limits.)
        denied = [site_entry(lab, "lab", [NAME]), site_entry(second_site, "site-b", ["someone_else"])]
        proc = fleet_run(lab, second_site, tmp_path, imports("deploy"), denied)
        assert proc.returncode != 0
        assert "may not manage label" in proc.stdout and "someone_else" in proc.stdout, proc.stdout[-3000:]
        assert members(second_site) == [] and len(members(lab)) == 1
        assert secret_b not in proc.stdout + proc.stderr

        sites = [site_entry(lab, "lab", [NAME]), site_entry(second_site, "site-b", [NAME])]
        proc = fleet_run(lab, second_site, tmp_path, imports("deploy"), sites)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert secret_b not in proc.stdout + proc.stderr
        assert len(members(lab)) == 1 and members(second_site) == ["x1000c0s0b0n0"]
        node_a = next(n for n in lab.session().get(lab.url + "/lab/v1/nodes", timeout=30).json()["nodes"]
                      if n["xname"] == members(lab)[0])
        assert lab.ssh(node_a["ip"], "hostname").returncode == 0
        assert second_site.ssh("10.251.1.1", f"ip -4 -o addr show | grep -c ' 10.116.{VLAN}.'").stdout.strip() == "1"
        assert lab.ssh(node_a["ip"], f"ip -4 -o addr show | grep -c ' 10.100.{VLAN}.'").stdout.strip() == "1"
        # each site's store holds its own record: its manifest, its node, its node's fingerprint only
        for site, name, xnames in ((lab, "lab", members(lab)), (second_site, "site-b", ["x1000c0s0b0n0"])):
            record = latest_release(site)
            assert record and record["operation"] == "deploy" and record["result"] == "success", record
            assert record["manifest"]["site"] == name and sorted(record["nodes"]) == xnames, record
            assert len(record["fingerprints"]) == 1, record["fingerprints"]
        # a play given one site's options refuses a manifest for the other, before any change
        single = dict(os.environ, **second_site.env(), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                      ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"))
        wrong = subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", "hpc.vcluster.deploy", "--check",
                                "-e", f"vcluster_manifest={tmp_path / (NAME + '-lab.yml')}"], env=single,
                               capture_output=True, text=True, timeout=600, check=False)
        assert wrong.returncode != 0 and "is for site lab, and this play's site is site-b" in wrong.stdout, wrong.stdout[-3000:]
        assert members(second_site) == ["x1000c0s0b0n0"]

        proc = fleet_run(lab, second_site, tmp_path, imports("destroy"), sites)
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert members(lab) == [] and members(second_site) == []
    finally:
        # a failure midway leaves a label (and its VLAN) on a site: destroy both, so later tests find the nodes free
        if members(lab) or members(second_site):
            fleet_run(lab, second_site, tmp_path, imports("destroy"),
                      [site_entry(lab, "lab", [NAME]), site_entry(second_site, "site-b", [NAME])])
        restore_nodes(lab)
        restore_nodes(second_site, compute=1, service=0)
