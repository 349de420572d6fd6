"""The network vService on the stack vCluster: its zone on the lab's site DNS.

The stack vCluster (conftest.py ``stack``) is deployed with the ``network`` vService, which
registers the vCluster's zone (``stack.vcluster.internal``) through the PowerDNS HTTP API of
the lab's site DNS (10.252.0.4, ``vcluster_lab/services/dns``) and points each node's
resolver at it. Here every node resolves every node of the vCluster, by name, by xname and the manifest's alias,
through the system resolver; the site DNS itself answers for the zone. After the stack is
destroyed (the fixture's teardown), the zone is gone from the site DNS.
"""
from __future__ import annotations

import json
import shlex
import urllib.error
import urllib.request

from conftest import STACK_NODES

ZONE = "stack.vcluster.internal"


def _zone(lab) -> tuple[int, dict]:
    """The site DNS API's answer for the stack's zone: (HTTP status, the zone; 404 when it is gone)."""
    env = lab.env("openchami")
    request = urllib.request.Request(f"{env['VCLUSTER_DNS_API_URL']}/api/v1/servers/localhost/zones/{ZONE}.",
                                     headers={"X-API-Key": env["VCLUSTER_DNS_API_KEY"]})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_every_node_resolves_every_other_through_the_site_dns(stack):
    status, zone = _zone(stack.lab)
    assert status == 200, f"{ZONE} is not on the site DNS ({status})"
    a_records = {r["name"]: r["records"][0]["content"] for r in zone["rrsets"]
                 if r["type"] == "A" and r["name"] != f"login.{ZONE}."}
    by_address = {address: name for name, address in a_records.items()}
    everyone = {address: xname for group, ips in stack.ips.items() for address, xname in zip(ips, STACK_NODES[group])}
    assert set(by_address) == set(everyone), f"the zone's A records {a_records} are not the nodes {everyone}"
    wanted = {}
    for address, xname in everyone.items():
        wanted[by_address[address].rstrip(".")] = address
        wanted[f"{xname}.{ZONE}"] = address
    wanted[f"login.{ZONE}"] = stack.ips["service"][0]  # the manifest's alias of the service group
    for group, ips in stack.ips.items():
        for index in range(len(ips)):
            resolv = stack.ssh(group, "cat /etc/resolv.conf", index=index).stdout
            assert "nameserver 10.252.0.4" in resolv, resolv
            # the DNS service only (not /etc/hosts): the answers come from the site DNS
            script = "; ".join(f"getent -s dns ahostsv4 {shlex.quote(fqdn)} | head -n1" for fqdn in wanted)
            out = stack.ssh(group, script, index=index).stdout.splitlines()
            got = [line.split()[0] if line.split() else "" for line in out]
            assert got == list(wanted.values()), f"{group}[{index}] resolves {list(wanted)} to {got}"
    # a node's own short name is in the zone too (its host name is its inventory name)
    short = stack.ssh("compute", "hostname -s").stdout.strip()
    assert f"{short}.{ZONE}" in wanted, (short, list(wanted))

    def zone_gone():
        assert _zone(stack.lab)[0] == 404, f"{ZONE} is still on the site DNS after destroy"
    stack.after_destroy.append(zone_gone)
