"""cloud_init against the lab: per-label data that reaches the nodes that join the label.

Proves: the group data is stored as asked (read back from the admin API), a second run
changes nothing, a node that joins the label afterwards gets the label's cloud-config in
its vendor-data (asked as that node, through the server's impersonation API) without the
module running again, and the CSM face refuses with an explanation.
"""
from __future__ import annotations

from vc_lab import playbook, site_play

N = ["x1000c0s%db0n0" % i for i in range(4)]


def test_label_cloud_init_reaches_joining_nodes(lab):
    tasks = f"""
- name: label
  hpc.vcluster.node_group:
    label: vc_ci
    members: ["{N[0]}"]
- name: cloud-init
  hpc.vcluster.cloud_init:
    label: vc_ci
    description: integration
    meta_data: {{syslog_aggregator: 10.252.0.10}}
    cloud_config:
      write_files:
        - {{path: /etc/vcluster, content: "ci\\n"}}
- name: cloud-init again
  hpc.vcluster.cloud_init:
    label: vc_ci
    description: integration
    meta_data: {{syslog_aggregator: 10.252.0.10}}
    cloud_config:
      write_files:
        - {{path: /etc/vcluster, content: "ci\\n"}}
- name: a node joins
  hpc.vcluster.node_group:
    label: vc_ci
    members: ["{N[1]}"]
    members_mode: add
"""
    out = playbook(lab, "openchami", site_play(tasks), diff=True)
    t = out["tasks"]
    assert t["cloud-init"]["changed"] and t["cloud-init again"]["changed"] is False
    s = lab.session("openchami")
    stored = s.get(lab.url + "/cloud-init/admin/groups/vc_ci").json()
    assert stored["meta-data"] == {"syslog_aggregator": "10.252.0.10"}
    assert "/etc/vcluster" in stored["file"]["content"]
    vendor = s.get(lab.url + f"/cloud-init/admin/impersonation/{N[1]}/vendor-data").text
    assert "vc_ci.yaml" in vendor
    group_yaml = s.get(lab.url + f"/cloud-init/admin/impersonation/{N[1]}/vc_ci.yaml").text
    assert "/etc/vcluster" in group_yaml and group_yaml.startswith("#cloud-config")

    refused = playbook(lab, "csm", site_play("""
- name: on csm
  hpc.vcluster.cloud_init:
    label: vc_ci
  ignore_errors: true
"""))
    assert "CSM has no cloud-init admin API" in refused["tasks"]["on csm"]["msg"]
    out = playbook(lab, "openchami", site_play("""
- name: remove
  hpc.vcluster.cloud_init: {label: vc_ci, state: absent}
- name: unlabel
  hpc.vcluster.node_group: {label: vc_ci, state: absent}
"""))
    assert out["tasks"]["remove"]["changed"]
    assert lab.session("openchami").get(lab.url + "/cloud-init/admin/groups/vc_ci").status_code == 404
