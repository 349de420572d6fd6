"""A lab's management network is its site's: nodes, their SMD addresses and VLANs follow it.

Records driver (no podman network, no range claimed): the server of a second site
(``VCLUSTER_LAB_MGMT_NETWORK=10.251.0.0/16``, as ``up --mgmt-network`` passes it) gives its
nodes addresses in that range, with the NMN layout; a network that is not a site range is
refused with the list of those that are.
"""
from __future__ import annotations

import ipaddress

import pytest

from vcluster_lab import inventory_data as inv
from vcluster_lab.nodes.base import DriverError
from vcluster_lab.nodes.podman import PodmanDriver, vlan_subnet


def addresses(server) -> dict:
    reply = server.session().get(server.url + "/hsm/v2/Inventory/EthernetInterfaces")
    reply.raise_for_status()
    return {e["ComponentID"]: [a["IPAddress"] for a in e["IPAddresses"]] for e in reply.json()}


@pytest.mark.parametrize("network, compute, service", [
    ("10.252.0.0/16", "10.252.1.2", "10.252.0.10"),
    ("10.251.0.0/16", "10.251.1.2", "10.251.0.10"),
])
def test_nodes_take_the_site_range(lab_server_factory, network, compute, service):
    server = lab_server_factory(env={inv.MGMT_ENV: network})
    reply = server.admin("POST", "/nodes", json={"compute": 2, "service": 1})
    reply.raise_for_status()
    found = addresses(server)
    assert found["x1000c0s1b0n0"] == [compute] and found["x3000c0s0b0n0"] == [service]


def test_layout_and_vlans_per_site():
    second = inv.mgmt_network("10.251.0.0/16")
    assert inv.compute_node(251, second).ip == "10.251.2.2" and inv.mgmt_gateway(second) == "10.251.0.1"
    # the same VLAN id on two sites: two subnets
    assert str(vlan_subnet(210)) == "10.100.210.0/24"
    assert str(vlan_subnet(210, second)) == "10.116.210.0/24"
    assert str(vlan_subnet(4094, inv.mgmt_network(inv.SITE_NETWORKS[-1]))) == "10.211.254.0/24"
    # no two sites' VLAN ranges meet, nor a site's management range
    ranges = [{vlan_subnet(v, inv.mgmt_network(n)).supernet(new_prefix=16) for v in (1, 4094)} for n in inv.SITE_NETWORKS]
    flat = [r for site in ranges for r in site]
    assert len(flat) == len(set(flat))
    assert not set(flat) & {ipaddress.ip_network(n) for n in inv.SITE_NETWORKS}


def test_other_networks_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"management network '10.9.0.0/16': a lab takes one of 10.252.0.0/16, 10.251"):
        inv.mgmt_network("10.9.0.0/16")
    with pytest.raises(DriverError, match="a lab takes one of"):
        PodmanDriver(tmp_path, prefix="vclabtnet", mgmt_subnet="10.252.0.0/24")
