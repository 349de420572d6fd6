"""network_segment against the lab: a VLAN that really isolates, and a PKey in UFM.

Proves: two labels put on two VLANs (one through each face) get their own podman
networks; from inside the nodes, a node reaches the other member of its VLAN on the VLAN
address (TCP to sshd) and does not reach the nodes of the other VLAN on theirs, in both
directions. A second run changes nothing, check mode changes nothing, a node that leaves
the label leaves the VLAN, and state=absent takes the VLAN away (the address is gone
from the node). The PKey case is records only (podman has no InfiniBand): UFM holds
exactly the members' port GUIDs with the asked membership, found by host name, and the
module authenticates to UFM with Basic credentials.
"""
from __future__ import annotations

import hashlib

import requests

from vc_lab import playbook, podman, site_play

N = ["x1000c0s%db0n0" % i for i in range(4)]
MGMT = ["10.252.1.%d" % (i + 1) for i in range(4)]
VLAN_A, VLAN_B = 301, 302


def vlan_ip(vlan, nid):
    return "10.%d.%d.%d" % (100 + vlan // 256, vlan % 256, 2 + (nid - 1) % 200)


def reaches(lab, from_node, ip):
    """From inside node ``from_node`` (over SSH on its management address): TCP to ip:22."""
    proc = lab.ssh(MGMT[from_node], f"timeout 3 bash -c 'exec 3<>/dev/tcp/{ip}/22' && echo open")
    return proc.stdout.strip() == "open"


def addresses(lab, node):
    return [a.split("/")[0] for a in lab.ssh(MGMT[node], "ip -4 -o addr show | awk '{print $4}'").stdout.split()]


def segment(label, vlan, state="present", check=False, suffix=""):
    return f"""
- name: {label} {state}{" check" if check else ""}{suffix}
  hpc.vcluster.network_segment:
    label: {label}
    vlan: {vlan}
    state: {state}
{"  check_mode: true" if check else ""}
"""


def test_vlans_isolate_labels_from_each_other(lab):
    labels = """
- name: label a
  hpc.vcluster.node_group: {label: vc_net_a, exclusive_group: vcluster, members: [%s, %s]}
- name: label b
  hpc.vcluster.node_group: {label: vc_net_b, exclusive_group: vcluster, members: [%s, %s]}
""" % tuple(N)
    playbook(lab, "openchami", site_play(labels))
    try:
        steps = (segment("vc_net_a", VLAN_A, check=True) + segment("vc_net_a", VLAN_A)
                 + segment("vc_net_a", VLAN_A, suffix=" again"))
        out = playbook(lab, "openchami", site_play(steps), diff=True)
        t = out["tasks"]
        assert t["vc_net_a present check"]["changed"] and t["vc_net_a present"]["changed"]
        assert t["vc_net_a present"]["added"] == N[:2] and t["vc_net_a present"]["diff"]["before"] == {}
        assert t["vc_net_a present again"]["changed"] is False
        out = playbook(lab, "csm", site_play(segment("vc_net_b", VLAN_B)))
        assert out["tasks"]["vc_net_b present"]["segment"]["members"] == N[2:]

        a0, a1 = vlan_ip(VLAN_A, 1), vlan_ip(VLAN_A, 2)
        b2, b3 = vlan_ip(VLAN_B, 3), vlan_ip(VLAN_B, 4)
        assert a0 in addresses(lab, 0) and b3 in addresses(lab, 3)
        # same VLAN: reachable on the VLAN addresses
        assert reaches(lab, 0, a1) and reaches(lab, 1, a0)
        assert reaches(lab, 2, b3) and reaches(lab, 3, b2)
        # other VLAN: not reachable, either way
        assert not reaches(lab, 0, b2) and not reaches(lab, 1, b3)
        assert not reaches(lab, 2, a0) and not reaches(lab, 3, a1)

        # a node that leaves the label leaves its VLAN
        out = playbook(lab, "openchami", site_play("""
- name: shrink a
  hpc.vcluster.node_group: {label: vc_net_a, members: [%s]}
""" % N[0] + segment("vc_net_a", VLAN_A)))
        assert out["tasks"]["vc_net_a present"]["removed"] == [N[1]]
        assert a1 not in addresses(lab, 1) and a0 in addresses(lab, 0)
        assert not reaches(lab, 0, a1)
    finally:
        steps = segment("vc_net_a", VLAN_A, "absent") + segment("vc_net_b", VLAN_B, "absent") + """
- name: unlabel a
  hpc.vcluster.node_group: {label: vc_net_a, state: absent}
- name: unlabel b
  hpc.vcluster.node_group: {label: vc_net_b, state: absent}
"""
        out = playbook(lab, "openchami", site_play(steps))
    assert out["tasks"]["vc_net_a absent"]["changed"] and out["tasks"]["vc_net_b absent"]["removed"] == N[2:]
    assert vlan_ip(VLAN_A, 1) not in addresses(lab, 0) and vlan_ip(VLAN_B, 4) not in addresses(lab, 3)
    nets = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"{lab.prefix}-vlan{VLAN_A}" not in nets and f"{lab.prefix}-vlan{VLAN_B}" not in nets
    again = playbook(lab, "csm", site_play(segment("vc_net_a", VLAN_A, "absent")))
    assert again["tasks"]["vc_net_a absent"]["changed"] is False


def ib_guid(xname):
    return "0c42a103" + hashlib.sha1(("ib:" + xname).encode()).hexdigest()[:8]


def ufm_pkey(lab, pkey):
    creds = lab.credentials()["ufm"]
    s = requests.Session()
    s.trust_env = False
    reply = s.get(lab.url + f"/ufmRest/resources/pkeys/{pkey}", params={"guids_data": "true"},
                  auth=(creds["username"], creds["password"]), verify=lab.env()["VCLUSTER_CA_PATH"], timeout=30)
    reply.raise_for_status()
    return dict((g["guid"], g["membership"]) for g in reply.json().get("guids", [])) if reply.json() else None


def test_pkey_through_ufm_on_both_faces(lab):
    creds = lab.credentials()["ufm"]
    env = {"VCLUSTER_UFM_USERNAME": creds["username"], "VCLUSTER_UFM_PASSWORD": creds["password"]}
    pkey = """
- name: pkey {state} {membership}
  hpc.vcluster.network_segment:
    label: vc_ib
    pkey: "0x0A12"
    membership: {membership}
    state: {state}
"""
    playbook(lab, "openchami", site_play("""
- name: label
  hpc.vcluster.node_group: {label: vc_ib, members: [%s, %s]}
""" % (N[0], N[1])))
    try:
        out = playbook(lab, "openchami", site_play(pkey.format(state="present", membership="full")), env=env)
        assert out["tasks"]["pkey present full"]["added"] == N[:2]
        assert ufm_pkey(lab, "0xa12") == {ib_guid(N[0]): "full", ib_guid(N[1]): "full"}
        out = playbook(lab, "csm", site_play(pkey.format(state="present", membership="full")), env=env)
        assert out["tasks"]["pkey present full"]["changed"] is False
        out = playbook(lab, "csm", site_play(pkey.format(state="present", membership="limited")), env=env)
        assert out["tasks"]["pkey present limited"]["changed"]
        assert ufm_pkey(lab, "0xa12") == {ib_guid(N[0]): "limited", ib_guid(N[1]): "limited"}
        bad = playbook(lab, "csm", site_play(pkey.format(state="present", membership="full")),
                       env=dict(env, VCLUSTER_UFM_PASSWORD="wrong"), expect_failure=True)
        assert "401" in bad["tasks"]["pkey present full"]["msg"] and "wrong" not in bad["tasks"]["pkey present full"]["msg"]
    finally:
        out = playbook(lab, "openchami", site_play(pkey.format(state="absent", membership="full") + """
- name: unlabel
  hpc.vcluster.node_group: {label: vc_ib, state: absent}
"""), env=env)
    assert out["tasks"]["pkey absent full"]["changed"] and ufm_pkey(lab, "0xa12") is None
