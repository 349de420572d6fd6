"""node_group, node_group_info and access control against the lab, through both faces.

Proves: a label is created, changed and deleted as asked (read back from SMD's API), a
second run changes nothing, check mode predicts without changing, the diff names the
members added and removed, the CSM face (whose SMD has no bulk member PUT) ends with the
same members, an exclusive-group conflict is refused and explained before any change, the
free nodes are those in no vCluster label, and an operator is refused a label it may not
manage (allow-list, or the realm roles of a lab user's Keycloak token) before any change.
"""
from __future__ import annotations

import pytest

from vc_lab import playbook, site_play

N = ["x1000c0s%db0n0" % i for i in range(4)]


def members(lab, face, label):
    base = lab.url + ("/hsm/v2" if face == "openchami" else "/apis/smd/hsm/v2")
    reply = lab.session(face).get(f"{base}/groups/{label}")
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return sorted(reply.json()["members"]["ids"])


@pytest.mark.parametrize("face", ["openchami", "csm"])
def test_node_group_lifecycle(lab, face):
    blue, red = f"vc_lbl_{face}_blue", f"vc_lbl_{face}_red"
    tasks = f"""
- name: create
  hpc.vcluster.node_group:
    label: {blue}
    description: integration
    exclusive_group: vcluster
    members: ["{N[0]}", "{N[1]}"]
  register: created
- name: create again
  hpc.vcluster.node_group:
    label: {blue}
    description: integration
    exclusive_group: vcluster
    members: ["{N[0]}", "{N[1]}"]
- name: swap in check mode
  hpc.vcluster.node_group:
    label: {blue}
    members: ["{N[1]}", "nid000003"]
  check_mode: true
- name: swap
  hpc.vcluster.node_group:
    label: {blue}
    members: ["{N[1]}", "nid000003"]
- name: free nodes
  hpc.vcluster.node_group_info:
    exclusive_group: vcluster
    role: [Compute]
- name: conflict
  hpc.vcluster.node_group:
    label: {red}
    exclusive_group: vcluster
    members: ["{N[2]}", "{N[3]}"]
  ignore_errors: true
- name: delete
  hpc.vcluster.node_group:
    label: {blue}
    state: absent
- name: delete again
  hpc.vcluster.node_group:
    label: {blue}
    state: absent
- name: red after the conflict
  hpc.vcluster.node_group_info:
    labels: ["{red}"]
    free: false
"""
    # the check-mode task runs before the real one: record what SMD held in between
    out = playbook(lab, face, site_play(tasks), diff=True)
    t = out["tasks"]
    assert t["create"]["changed"] and t["create"]["created"] and t["create"]["added"] == N[:2]
    assert t["create again"]["changed"] is False
    assert t["swap in check mode"]["changed"] and t["swap in check mode"]["added"] == [N[2]]
    assert t["swap in check mode"]["removed"] == [N[0]]
    assert t["swap"]["changed"] and t["swap"]["diff"]["before"]["members"] == N[:2]
    assert t["swap"]["diff"]["after"]["members"] == [N[1], N[2]]
    free = t["free nodes"]["free_xnames"]
    assert N[0] in free and N[3] in free and N[1] not in free and N[2] not in free
    assert blue in [g["label"] for g in t["free nodes"]["groups"]]
    conflict = t["conflict"]
    assert conflict["failed"] and "conflict" in conflict["msg"] and N[2] in conflict["msg"] and blue in conflict["msg"]
    assert t["red after the conflict"]["groups"] == []  # refused before any change: red was never made
    assert t["delete"]["changed"] and t["delete"]["removed"] == [N[1], N[2]]
    assert t["delete again"]["changed"] is False
    assert members(lab, face, blue) is None and members(lab, face, red) is None


@pytest.mark.parametrize("face", ["openchami", "csm"])
def test_members_on_the_api_after_each_step(lab, face):
    label = f"vc_api_{face}"
    step = """
- name: set
  hpc.vcluster.node_group:
    label: {label}
    members: {members}
    members_mode: {mode}
"""
    try:
        playbook(lab, face, site_play(step.format(label=label, members=N[:3], mode="exact")))
        assert members(lab, face, label) == N[:3]
        playbook(lab, face, site_play(step.format(label=label, members=[N[0]], mode="remove")))
        assert members(lab, face, label) == N[1:3]
        playbook(lab, face, site_play(step.format(label=label, members=["x1000c0s[2-3]b0n0"], mode="add")))
        assert members(lab, face, label) == N[1:4]
        out = playbook(lab, face, site_play(step.format(label=label, members=[N[3], N[0]], mode="exact")))
        assert out["tasks"]["set"]["added"] == [N[0]] and out["tasks"]["set"]["removed"] == N[1:3]
        assert members(lab, face, label) == [N[0], N[3]]
    finally:
        playbook(lab, face, site_play(f"""
- name: cleanup
  hpc.vcluster.node_group:
    label: {label}
    state: absent
"""))


def test_rbac_from_a_lab_user_token_refuses_before_any_change(lab):
    """alice's Keycloak realm roles hold vc_blue only: vc_red is refused, vc_blue allowed."""
    alice = lab.user_token("alice")
    tasks = f"""
- name: take vc_red
  hpc.vcluster.node_group:
    label: vc_red
    members: ["{N[0]}"]
    token: "{{{{ alice_token }}}}"
    rbac_from_token: true
  ignore_errors: true
- name: power the nodes of vc_red through nodes
  hpc.vcluster.power:
    nodes: ["{N[3]}"]
    state: "off"
    token: "{{{{ alice_token }}}}"
    rbac_from_token: true
  ignore_errors: true
- name: take vc_blue
  hpc.vcluster.node_group:
    label: vc_blue
    members: ["{N[0]}"]
    token: "{{{{ alice_token }}}}"
    rbac_from_token: true
- name: drop vc_blue
  hpc.vcluster.node_group:
    label: vc_blue
    state: absent
    token: "{{{{ alice_token }}}}"
    rbac_from_token: true
"""
    out = playbook(lab, "csm", site_play(tasks), extra_vars={"alice_token": alice})
    t = out["tasks"]
    refused = t["take vc_red"]
    assert refused["failed"] and "access denied" in refused["msg"] and "vc_red" in refused["msg"]
    assert "alice" in refused["msg"] and alice not in refused["msg"]
    assert t["power the nodes of vc_red through nodes"]["failed"]
    assert "in no label the operator may manage" in t["power the nodes of vc_red through nodes"]["msg"]
    assert members(lab, "csm", "vc_red") is None
    assert t["take vc_blue"]["changed"] and t["drop vc_blue"]["changed"]
    state = lab.session("csm").get(lab.url + "/apis/power-control/v1/power-status", params={"xname": N[3]}).json()
    assert state["status"][0]["powerState"] == "on"


def test_allow_list_from_the_environment_refuses_on_openchami(lab):
    tasks = """
- name: outside the allow-list
  hpc.vcluster.node_group:
    label: vc_green
  ignore_errors: true
- name: inside it
  hpc.vcluster.node_group_info:
    labels: [vc_blue]
"""
    out = playbook(lab, "openchami", site_play(tasks), env={"VCLUSTER_ALLOWED_LABELS": "vc_blue,vc_red"})
    t = out["tasks"]
    assert t["outside the allow-list"]["failed"] and "vc_green" in t["outside the allow-list"]["msg"]
    assert "allowed_labels" in t["outside the allow-list"]["msg"]
    assert members(lab, "openchami", "vc_green") is None
    assert t["inside it"]["groups"] == []
