"""playbooks/carve.yml and playbooks/release.yml against the lab, through both faces.

Proves: carve labels two free nodes, builds and boots an image (podman on OpenCHAMI,
IMS on CSM), puts them on a VLAN and powers them on; both nodes then run that image
(marker over SSH) and hold their VLAN address; a second carve changes nothing. release
powers them off (containers stopped), takes the VLAN away, forgets the boot parameters
and deletes the label, and a second release changes nothing. The same playbooks serve
both faces: only the environment (vcluster-lab env) differs.
"""
from __future__ import annotations

import secrets

import pytest

from vc_lab import ROOT, playbook, podman, site_play

CARVE, RELEASE = str(ROOT / "playbooks" / "carve.yml"), str(ROOT / "playbooks" / "release.yml")
MGMT = {"x1000c0s%db0n0" % i: "10.252.1.%d" % (i + 1) for i in range(4)}


def changed_tasks(out):
    return sorted(name for name, r in out["tasks"].items() if isinstance(r, dict) and r.get("changed"))


@pytest.mark.parametrize("face,vlan", [("openchami", 311), ("csm", 312)])
def test_carve_then_release(lab, face, vlan):
    label = f"vc_carve_{face}"
    marker = f"{face}-{secrets.token_hex(3)}"
    extra = {"vcluster_label": label, "vcluster_vlan": vlan, "vcluster_node_count": 2,
             "vcluster_kernel_params": "console=ttyS0",
             "vcluster_recipe": {"options": {"name": f"vcit-carve-{face}", "publish_tags": [marker],
                                             "parent": "localhost/vclab-base:bookworm", "pkg_manager": "apt"},
                                 "cmds": [{"cmd": f"echo {marker} > /etc/vcluster-image"}]}}
    if face == "csm":
        extra["vcluster_recipe"]["options"]["publish_tags"] = [marker]
    env = {"VCLUSTER_IMS_PUBLIC_KEY": (lab.home / "ssh" / "id_ed25519.pub").read_text().strip()}
    out = playbook(lab, face, "", path=CARVE, extra_vars=extra, env=env)
    nodes = out["tasks"]["Label the nodes"]["group"]["members"]
    assert len(nodes) == 2 and out["tasks"]["Label the nodes"]["changed"]
    assert out["tasks"]["Put the nodes on their VLAN"]["segment"]["members"] == nodes
    assert out["tasks"]["Power on the nodes"]["power_state"] == {n: "on" for n in nodes}
    subnet = "10.%d.%d." % (100 + vlan // 256, vlan % 256)
    for node in nodes:
        lab.wait_ssh(MGMT[node])
        assert lab.ssh(MGMT[node], "cat /etc/vcluster-image").stdout.strip() == marker
        assert subnet in lab.ssh(MGMT[node], "ip -4 -o addr show").stdout

    again = playbook(lab, face, "", path=CARVE, extra_vars=extra, env=env)
    assert changed_tasks(again) == [] and again["tasks"]["Label the nodes"]["group"]["members"] == nodes

    release = {"vcluster_label": label, "vcluster_vlan": vlan}
    out = playbook(lab, face, "", path=RELEASE, extra_vars=release)
    assert changed_tasks(out) == ["Delete the label", "Forget their boot parameters", "Power the nodes off",
                                  "Take the nodes off their VLAN"]
    for node in nodes:
        state = podman("inspect", "--format", "{{.State.Status}}", lab.container(node)).stdout.strip()
        assert state == "exited"
    assert changed_tasks(playbook(lab, face, "", path=RELEASE, extra_vars=release)) == []

    # give the nodes back to the lab as they were: the base image, powered on
    playbook(lab, face, site_play("""
- name: base image
  hpc.vcluster.boot_params:
    nodes: %s
    image: {name: vclab-base, tag: bookworm}
- name: power on
  hpc.vcluster.power:
    nodes: %s
    state: "on"
- name: forget the image
  hpc.vcluster.image:
    name: vcit-carve-%s
    state: absent
""" % (nodes, nodes, face)))
    for node in nodes:
        lab.wait_ssh(MGMT[node])
        assert subnet not in lab.ssh(MGMT[node], "ip -4 -o addr show").stdout
