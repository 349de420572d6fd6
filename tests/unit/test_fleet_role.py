"""Two vClusters of one run on two sites keep apart in hpc.vcluster.vcluster (no site needed).

The fleet integration test (tests/integration/test_fleet.py) runs the playbooks on two lab
sites; this runs the role's inventory step twice in one ansible-playbook run, on an inventory
where both sites have a node x1000c0s0b0n0 with the label, as the plan step leaves its facts,
and checks what the second vCluster sees: its own site's options, its own host only, and the
group vcluster_members that still holds the first one's host.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SITES = [{"name": "lab", "site_kind": "openchami", "api_url": "https://lab:8443", "allowed_labels": ["fleet"]},
         {"name": "site-b", "site_kind": "csm", "api_url": "https://b:8443", "client_id": "b", "client_secret": "s3cr3t"}]
INVENTORY = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                     "children": {"fleet": {"hosts": {
                         "nid001": {"smd_xname": "x1000c0s0b0n0", "vcluster_site": "lab"},
                         "nid001.site-b": {"smd_xname": "x1000c0s0b0n0", "vcluster_site": "site-b"}}}}}}


def one_vcluster(site: str) -> str:
    spec = {"name": "fleet", "site": site, "image": {"name": "base", "tag": "1"}, "vservices": [], "boot": {"timeout": 5}}
    plan = {"label": "fleet", "members": ["x1000c0s0b0n0"], "node_groups": {"compute": ["x1000c0s0b0n0"]},
            "nodes": [{"xname": "x1000c0s0b0n0", "node_group": "compute"}], "boot_groups": []}
    return f"""
- name: Site steps of the vCluster on {site}
  hosts: localhost
  gather_facts: false
  tasks:
    - name: What the plan step leaves
      run_once: true
      ansible.builtin.set_fact:
        vcluster_spec: {json.dumps(spec)}
        vcluster_plan: {json.dumps(plan)}
        vcluster_targets: ["x1000c0s0b0n0"]
    - name: Inventory
      ansible.builtin.include_role:
        name: hpc.vcluster.vcluster
        tasks_from: inventory
        public: true  # its defaults, for the next task
    - name: Site options {site}
      run_once: true
      ansible.builtin.debug:
        msg: "{{{{ vcluster_site_options }}}}"
- name: Node steps of the vCluster on {site}
  hosts: vcluster_members
  gather_facts: false
  tasks:
"""


def test_two_vclusters_of_one_run_keep_their_site_and_hosts(tmp_path):
    guard = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())[1]["tasks"][0]
    assert guard["ansible.builtin.meta"] == "end_host"  # the guard the deploy playbook's node play starts with
    node_tasks = yaml.safe_dump([guard, {"name": "On the node", "ansible.builtin.debug": {"msg": "{{ vcluster.name }}"}}])
    text = "---" + "".join(one_vcluster(site) + "\n".join("    " + line for line in node_tasks.splitlines()) + "\n"
                           for site in ("lab", "site-b"))
    (tmp_path / "run.yml").write_text(text)
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(INVENTORY))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", VCLUSTER_INVENTORY_SITES=json.dumps(SITES))
    proc = subprocess.run([BIN / "ansible-playbook", "-i", tmp_path / "hosts.yml", tmp_path / "run.yml"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    plays = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])[0]["plays"]  # profile_tasks prints after it
    tasks = [{t["task"]["name"].split(" : ", 1)[-1]: t["hosts"] for t in play["tasks"]} for play in plays]

    options = [next(iter(tasks[i][f"Site options {site}"].values()))["msg"] for i, site in ((0, "lab"), (2, "site-b"))]
    assert options[0] == {"site_name": "lab", "site_kind": "openchami", "api_url": "https://lab:8443",
                          "allowed_labels": ["fleet"]}
    assert options[1]["site_name"] == "site-b" and options[1]["client_id"] == "b"
    members = [next(iter(tasks[i]["These hosts, and no other, are this vCluster's members"].values()))["ansible_facts"]
               for i in (0, 2)]
    assert [m["vcluster_member_hosts"] for m in members] == [["nid001"], ["nid001.site-b"]]
    # the second node play: vcluster_members holds both hosts; the first vCluster's ends there
    assert sorted(tasks[3]["On the node"]) == ["nid001.site-b"]
    assert sorted(tasks[1]["On the node"]) == ["nid001"]
