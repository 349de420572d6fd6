"""image, boot_params, power and bos_session against the lab: real builds, real reboots, a real power cycle.

Proves, through the OpenCHAMI face: a recipe built with the image module (podman on the
controller) is booted by pointing BSS at it (boot_params, by image name and tag) and
restarting the node through PCS (power), and the node then runs it (a marker file the
recipe wrote, read over SSH); the same for the CSM face with an IMS build and a BOS
session. A power cycle of a lab node: off stops its container and SSH no longer answers,
on starts it and SSH answers as the node's host name; on/off are idempotent, check mode
predicts from the power status, and image_info names the node among the image's users.
"""
from __future__ import annotations

import secrets

from vc_lab import playbook, podman, site_play

NODE, NODE_IP, HOSTNAME = "x1000c0s3b0n0", "10.252.1.4", "nid000004"


def container_state(lab):
    return podman("inspect", "--format", "{{.State.Status}}", lab.container(NODE)).stdout.strip()


def marker_on_node(lab):
    lab.wait_ssh(NODE_IP)
    return lab.ssh(NODE_IP, "cat /etc/vcluster-image").stdout.strip()


def test_openchami_build_boot_and_power_cycle(lab):
    marker = "oc-" + secrets.token_hex(4)
    label = "vc_boot_oc"
    build_boot = f"""
- name: label
  hpc.vcluster.node_group:
    label: {label}
    members: ["{NODE}"]
- name: build
  hpc.vcluster.image:
    recipe:
      options: {{name: vcit-boot, publish_tags: ["{marker}"], parent: "localhost/vclab-base:bookworm", pkg_manager: apt}}
      cmds:
        - cmd: echo {marker} > /etc/vcluster-image
    builder: integration-test
- name: build again
  hpc.vcluster.image:
    recipe:
      options: {{name: vcit-boot, publish_tags: ["{marker}"], parent: "localhost/vclab-base:bookworm", pkg_manager: apt}}
      cmds:
        - cmd: echo {marker} > /etc/vcluster-image
    builder: integration-test
- name: boot params in check mode
  hpc.vcluster.boot_params:
    label: {label}
    image: {{name: vcit-boot, tag: "{marker}"}}
    params: console=ttyS0
  check_mode: true
- name: boot params
  hpc.vcluster.boot_params:
    label: {label}
    image: {{name: vcit-boot, tag: "{marker}"}}
    params: console=ttyS0
- name: boot params again
  hpc.vcluster.boot_params:
    label: {label}
    image: {{name: vcit-boot, tag: "{marker}"}}
    params: console=ttyS0
- name: reboot into it
  hpc.vcluster.power:
    label: {label}
    state: soft-restart
    wait_timeout: 300
- name: catalogue
  hpc.vcluster.image_info:
    name: vcit-boot
"""
    out = playbook(lab, "openchami", site_play(build_boot), diff=True)
    t = out["tasks"]
    assert t["build"]["changed"] and t["build"]["outcome"] == "built"
    assert t["build again"]["changed"] is False
    assert t["boot params in check mode"]["changed"] and t["boot params"]["changed_nodes"] == [NODE]
    assert t["boot params again"]["changed"] is False
    kernel = t["boot params"]["boot_params"][NODE]["kernel"]
    assert kernel.endswith(f"/boot-images/vcit-boot/{marker}/vmlinuz")
    assert t["reboot into it"]["node_results"][NODE]["status"] == "succeeded"
    assert marker_on_node(lab) == marker  # the node booted the image the module built
    image = next(i for i in t["catalogue"]["images"] if marker in i["tags"])
    assert image["provenance"]["builder"] == "integration-test" and image["used_by"] == [NODE]
    assert image["provenance"]["recipe"]["cmds"][0]["cmd"] == f"echo {marker} > /etc/vcluster-image"

    cycle = f"""
- name: power off
  hpc.vcluster.power:
    nodes: ["{NODE}"]
    state: "off"
- name: power off again
  hpc.vcluster.power:
    nodes: ["{NODE}"]
    state: "off"
- name: power on in check mode
  hpc.vcluster.power:
    nodes: ["{HOSTNAME}"]
    state: "on"
  check_mode: true
"""
    out = playbook(lab, "openchami", site_play(cycle), diff=True)
    t = out["tasks"]
    assert t["power off"]["changed"] and t["power off"]["power_state"] == {NODE: "off"}
    assert t["power off"]["diff"] == {"before": {NODE: "on"}, "after": {NODE: "off"}}
    assert t["power off again"]["changed"] is False
    assert t["power on in check mode"]["changed"] and t["power on in check mode"]["power_state"] == {NODE: "on"}
    assert container_state(lab) == "exited"  # check mode did not power it on
    assert lab.ssh(NODE_IP, "true", timeout=5).returncode != 0

    out = playbook(lab, "openchami", site_play(f"""
- name: power on
  hpc.vcluster.power:
    nodes: ["{HOSTNAME}"]
    state: "on"
- name: back to the base image
  hpc.vcluster.boot_params:
    label: {label}
    image: {{name: vclab-base, tag: bookworm}}
- name: reboot hard
  hpc.vcluster.power:
    label: {label}
    state: hard-restart
- name: unlabel
  hpc.vcluster.node_group:
    label: {label}
    state: absent
- name: remove the image
  hpc.vcluster.image:
    name: vcit-boot
    state: absent
"""))
    t = out["tasks"]
    assert t["power on"]["changed"] and t["power on"]["node_results"][NODE]["status"] == "succeeded"
    assert container_state(lab) == "running"
    lab.wait_ssh(NODE_IP)
    assert lab.ssh(NODE_IP, "hostname").stdout.strip() == HOSTNAME
    assert lab.ssh(NODE_IP, "test -e /etc/vcluster-image").returncode != 0  # the base image again
    assert t["remove the image"]["changed"]


def test_csm_ims_build_and_bos_boot(lab):
    marker = "csm-" + secrets.token_hex(4)
    label = "vc_boot_csm"
    pubkey = (lab.home / "ssh" / "id_ed25519.pub").read_text().strip()
    tasks = f"""
- name: label
  hpc.vcluster.node_group:
    label: {label}
    members: ["{NODE}"]
- name: build with IMS
  hpc.vcluster.image:
    recipe:
      options: {{name: vcit-ims, publish_tags: ["{marker}"], parent: "localhost/vclab-base:bookworm", pkg_manager: apt}}
      cmds:
        - cmd: echo {marker} > /etc/vcluster-image
    ims:
      public_key: "{pubkey}"
    builder: integration-test
    wait_timeout: 600
  register: built
- name: build with IMS again
  hpc.vcluster.image:
    recipe:
      options: {{name: vcit-ims, publish_tags: ["{marker}"], parent: "localhost/vclab-base:bookworm", pkg_manager: apt}}
      cmds:
        - cmd: echo {marker} > /etc/vcluster-image
    ims:
      public_key: "{pubkey}"
- name: template and boot session
  hpc.vcluster.bos_session:
    template_name: vcit-{label.replace('_', '-')}
    image: {{id: "{{{{ built.image.ims_id }}}}"}}
    kernel_parameters: console=ttyS0
    node_groups: [{label}]
    operation: reboot
    session_name: vcit-{marker}
    wait_timeout: 600
- name: same again
  hpc.vcluster.bos_session:
    template_name: vcit-{label.replace('_', '-')}
    image: {{id: "{{{{ built.image.ims_id }}}}"}}
    kernel_parameters: console=ttyS0
    node_groups: [{label}]
    operation: reboot
    session_name: vcit-{marker}
- name: catalogue
  hpc.vcluster.image_info:
    name: vcit-ims
"""
    out = playbook(lab, "csm", site_play(tasks), diff=True)
    t = out["tasks"]
    ims_id = t["build with IMS"]["image"]["ims_id"]
    assert t["build with IMS"]["changed"] and ims_id
    assert t["build with IMS again"]["changed"] is False
    session = t["template and boot session"]
    assert session["changed"] and session["template_changed"] and session["session"]["status"]["status"] == "complete"
    assert t["same again"]["changed"] is False
    assert marker_on_node(lab) == marker  # BOS wrote BSS from the IMS manifest and rebooted the node into it
    image = next(i for i in t["catalogue"]["images"] if i["ims_id"] == ims_id)
    assert image["provenance"]["builder"] == "integration-test" and image["used_by"] == [NODE]

    out = playbook(lab, "csm", site_play(f"""
- name: power cycle off
  hpc.vcluster.power:
    label: {label}
    state: "off"
- name: power cycle on
  hpc.vcluster.power:
    label: {label}
    state: "on"
- name: back to the base image
  hpc.vcluster.boot_params:
    label: {label}
    image: {{name: vclab-base, tag: bookworm}}
- name: reboot
  hpc.vcluster.power:
    label: {label}
    state: soft-restart
- name: drop the template
  hpc.vcluster.bos_session:
    template_name: vcit-{label.replace('_', '-')}
    state: absent
- name: unlabel
  hpc.vcluster.node_group:
    label: {label}
    state: absent
- name: soft-delete the IMS image
  hpc.vcluster.image:
    name: vcit-ims
    state: absent
"""))
    t = out["tasks"]
    assert t["power cycle off"]["changed"] and t["power cycle on"]["changed"]
    lab.wait_ssh(NODE_IP)
    assert lab.ssh(NODE_IP, "test -e /etc/vcluster-image").returncode != 0
    assert t["drop the template"]["changed"] and t["soft-delete the IMS image"]["changed"]
