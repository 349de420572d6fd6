"""Two lab sites on one machine: their own port, store, prefix, site name and management network.

The second site (fixture ``second_site``, 10.251.0.0/16) runs beside the session's lab
(10.252.0.0/16): the same xname has an address in each site's range and answers SSH there,
each site's API knows only its own nodes and credentials, and the same VLAN id on both
sites makes two podman networks in two ranges, so that one manifest can deploy on both.
"""
from __future__ import annotations

import json

import requests

from vc_lab import playbook, podman, site_play

XNAME = "x1000c0s0b0n0"
VLAN = 240


def nodes(site) -> dict:
    reply = site.session().get(site.url + "/lab/v1/nodes", timeout=30)
    reply.raise_for_status()
    return {n["xname"]: n for n in reply.json()["nodes"]}


def subnet(network: str) -> str:
    return json.loads(podman("network", "inspect", network).stdout)[0]["subnets"][0]["subnet"]


def test_second_site_beside_the_first(lab, second_site):
    a, b = nodes(lab), nodes(second_site)
    assert a[XNAME]["ip"] == "10.252.1.1" and b[XNAME]["ip"] == "10.251.1.1"
    assert sorted(b) == [XNAME]                       # its own store: one node, not the first site's five
    second_site.wait_ssh(b[XNAME]["ip"])
    assert second_site.ssh(b[XNAME]["ip"], "hostname").stdout.strip() == "nid000001"
    env_a, env_b = lab.env(), second_site.env()
    assert (env_a["VCLUSTER_SITE_NAME"], env_b["VCLUSTER_SITE_NAME"]) == ("lab", "site-b")
    assert second_site.token_variable == "SITE_B_ACCESS_TOKEN" and "LAB_ACCESS_TOKEN" not in env_b
    assert env_a["VCLUSTER_API_URL"] != env_b["VCLUSTER_API_URL"]
    # one site's token is no good on the other
    foreign = requests.get(second_site.url + "/hsm/v2/groups", timeout=30, verify=env_b["VCLUSTER_CA_PATH"],
                           headers={"Authorization": f"Bearer {env_a[lab.token_variable]}"})
    assert foreign.status_code == 401
    assert "site_name: \"site-b\"" in second_site.run("inventory", "--face", "openchami").stdout

    # the same label and VLAN id on both sites: two networks, two ranges
    steps = f"""
- name: label
  hpc.vcluster.node_group: {{label: vc_sites, exclusive_group: vcluster, members: [{XNAME}]}}
- name: vlan
  hpc.vcluster.network_segment: {{label: vc_sites, vlan: {VLAN}}}
"""
    undo = f"""
- name: vlan off
  hpc.vcluster.network_segment: {{label: vc_sites, vlan: {VLAN}, state: absent}}
- name: label off
  hpc.vcluster.node_group: {{label: vc_sites, state: absent}}
"""
    try:
        for site in (lab, second_site):
            result = playbook(site, "openchami", site_play(steps))
            assert result["tasks"]["vlan"]["changed"]
        assert subnet(f"{lab.prefix}-vlan{VLAN}") == f"10.100.{VLAN}.0/24"
        assert subnet(f"{second_site.prefix}-vlan{VLAN}") == f"10.116.{VLAN}.0/24"
        addresses = second_site.ssh(b[XNAME]["ip"], "ip -4 -o addr show | awk '{print $4}'").stdout.split()
        assert f"10.116.{VLAN}.2/24" in addresses, addresses
    finally:
        for site in (lab, second_site):
            playbook(site, "openchami", site_play(undo))
