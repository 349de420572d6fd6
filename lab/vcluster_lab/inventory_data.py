"""How the lab names its nodes, and the synthetic site ``seed`` writes.

One place for the layout in docs/architecture.md ("The lab"), so the control plane, the
node driver, the CLI and tests agree on xnames, NIDs, addresses and hostnames:

* compute node *i* (0-based): ``x1000c0s<i>b0n0``, NID *i+1*, Role Compute, Class Mountain,
  NMN address 10.252.(1+i//250).(1+i%250);
* service node *j*: ``x3000c0s<j>b0n0``, NID 100001+*j*, Role Service, Class River, NMN
  address 10.252.0.(10+j);
* those addresses are in the lab's management network, 10.252.0.0/16 (the CSM NMN) unless the
  lab was brought up with another (``up --mgmt-network``, a second site on the same machine:
  one of :data:`SITE_NETWORKS`); the server and the node driver read it from
  ``$VCLUSTER_LAB_MGMT_NETWORK``;
* every node: Arch X86, NetType Sling, hostname ``nid%06d`` of its NID, MAC ``02:`` + the
  first 5 bytes of sha1(xname), InfiniBand port GUID ``0c42a103`` + 4 bytes of
  sha1("ib:" + xname).

The seeded site (records only, for scale tests) lives in other cabinets (x1100.. and
x3100..) and NIDs (from 200001), with NMN addresses in 10.253.0.0/16, so seeding never
collides with nodes made by ``up``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import random
import re

from .server.xname import node_parts

MGMT_NETWORK = "10.252.0.0/16"
MGMT_GATEWAY = "10.252.0.1"
#: The management networks a lab may have: one site per /16, the first the CSM NMN. Each
#: site's VLAN networks get their own range too (:func:`vlan_octet`), so that two sites on
#: one machine can use the same VLAN ids. 10.253.0.0/16 is the seeded records' (no network).
SITE_NETWORKS = tuple(f"10.{octet}.0.0/16" for octet in (252, 251, 250, 249, 248, 247, 246))
MGMT_ENV = "VCLUSTER_LAB_MGMT_NETWORK"
DEFAULT_IMAGE = "localhost/vclab-base:bookworm"
_PORT = re.compile(r"^x(\d+)c(\d+)r(\d+)j(\d+)p(\d+)$")


def mgmt_network(value: str | None = None) -> ipaddress.IPv4Network:
    """The lab's management network: ``value``, else ``$VCLUSTER_LAB_MGMT_NETWORK``, else the NMN."""
    text = value or os.environ.get(MGMT_ENV) or MGMT_NETWORK
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError:
        net = None
    if net is None or str(net) not in SITE_NETWORKS:
        raise ValueError(f"management network {text!r}: a lab takes one of {', '.join(SITE_NETWORKS)}")
    return net


def mgmt_gateway(net: ipaddress.IPv4Network | None = None) -> str:
    return str((net or mgmt_network()).network_address + 1)


def vlan_octet(vlan_id: int, net: ipaddress.IPv4Network | None = None) -> int:
    """Second octet of a VLAN's subnet: 100 + id//256 on the NMN's site, 16 higher per site after it."""
    site = SITE_NETWORKS.index(str(net or mgmt_network()))
    return 100 + 16 * site + int(vlan_id) // 256


def _address(net: ipaddress.IPv4Network | None, third: int, fourth: int) -> str:
    return str((net or mgmt_network()).network_address + third * 256 + fourth)


@dataclasses.dataclass(frozen=True)
class NodeLayout:
    xname: str
    nid: int
    role: str
    cls: str  # SMD Class
    hostname: str
    ip: str
    mac: str
    arch: str = "X86"
    net_type: str = "Sling"
    subrole: str = ""

    @property
    def kind(self) -> str:
        return "compute" if self.role == "Compute" else "service"


def mac_for(xname: str) -> str:
    digest = hashlib.sha1(xname.encode()).digest()[:5]
    return "02:" + ":".join(f"{b:02x}" for b in digest)


def ib_guid_for(xname: str) -> str:
    """The node's InfiniBand port GUID (16 hex digits, no 0x, as UFM writes them)."""
    return "0c42a103" + hashlib.sha1(("ib:" + xname).encode()).hexdigest()[:8]


def hostname_for(nid: int) -> str:
    return f"nid{nid:06d}"


def compute_node(i: int, net: ipaddress.IPv4Network | None = None) -> NodeLayout:
    nid = i + 1
    xname = f"x1000c0s{i}b0n0"
    return NodeLayout(xname, nid, "Compute", "Mountain", hostname_for(nid),
                      _address(net, 1 + i // 250, 1 + i % 250), mac_for(xname))


def service_node(j: int, net: ipaddress.IPv4Network | None = None) -> NodeLayout:
    if j > 240:
        raise ValueError("at most 241 service nodes fit in <network>.0.10-250")
    nid = 100001 + j
    xname = f"x3000c0s{j}b0n0"
    return NodeLayout(xname, nid, "Service", "River", hostname_for(nid), _address(net, 0, 10 + j),
                      mac_for(xname))


def lab_nodes(compute: int, service: int, net: ipaddress.IPv4Network | None = None) -> list[NodeLayout]:
    return [service_node(j, net) for j in range(service)] + [compute_node(i, net) for i in range(compute)]


def layout_for(xname: str) -> NodeLayout | None:
    """The lab layout of an xname made by ``up`` (None for anything else)."""
    parts = node_parts(xname)
    if not parts:
        return None
    cab, chassis, slot, bmc, node = parts
    if chassis or bmc or node:
        return None
    if cab == 1000:
        return compute_node(slot)
    if cab == 3000 and slot <= 240:
        return service_node(slot)
    return None


# ---------------------------------------------------------------- fabric naming
def edge_switch(xname: str) -> str | None:
    """The Slingshot edge switch a node's NIC is cabled to: one switch per 16 slots of a chassis."""
    parts = node_parts(xname)
    if not parts:
        return None
    cab, chassis, slot, _, _ = parts
    return f"x{cab}c{chassis}r{slot // 16}b0"


def edge_port(xname: str) -> str | None:
    """The switch port facing the node's first HSN NIC (``dst_port`` = ``<xname>h0``)."""
    parts = node_parts(xname)
    if not parts:
        return None
    cab, chassis, slot, bmc, node = parts
    return f"x{cab}c{chassis}r{slot // 16}j{slot % 16}p{bmc * 2 + node}"


def port_node_guess(port: str) -> str | None:
    """The node xname whose edge port is ``port`` in the usual layout (b0/b1, n0/n1), or None."""
    m = _PORT.match(port or "")
    if not m:
        return None
    cab, chassis, switch, jack, p = (int(g) for g in m.groups())
    return f"x{cab}c{chassis}s{switch * 16 + jack}b{p // 2}n{p % 2}"


def port_numbers(xname: str) -> tuple[int, int, int]:
    """(group id, switch number, port number) of a node's edge port, for its DFA."""
    cab, chassis, slot, bmc, node = node_parts(xname)  # type: ignore[misc]
    return cab % 512, (chassis * 8 + slot // 16) % 32, ((slot % 16) * 4 + bmc * 2 + node) % 64


def edge_port_dfa(xname: str) -> int:
    grp, swc, port = port_numbers(xname)
    return (grp << 23) | (swc << 18) | (port << 12)


# ---------------------------------------------------------------- the seeded site
@dataclasses.dataclass
class SeedSite:
    components: list[tuple]  # rows for store.components
    interfaces: list[tuple]  # rows for store.eth_interfaces
    groups: list[dict]  # {label, description, tags, exclusive_group, members}
    partitions: list[dict]  # {name, description, tags, members}


def seed_site(nodes: int, groups: int, partitions: int, now: str, rng_seed: int = 1) -> SeedSite:
    """A realistic spread of nodes, groups and partitions, deterministic for a given size.

    Roles: ~90% Compute, 5% Application (UAN/login), 3% Service, 2% Storage. Arch: ~85%
    X86, 15% ARM. State: mostly Ready, some Off, On, Standby (with Flag Alert). Group
    shapes: ``vc_<n>`` groups share the exclusiveGroup ``vcluster`` and hold disjoint
    slices; the rest are overlapping (architecture, GPU, racks, roles).
    """
    rng = random.Random(rng_seed)
    comps, ifaces, records = [], [], []
    per_cabinet = 8 * 8 * 2 * 2  # chassis x slots x bmcs x nodes
    for k in range(nodes):
        cab, rest = divmod(k, per_cabinet)
        chassis, rest = divmod(rest, 32)
        slot, rest = divmod(rest, 4)
        bmc, node = divmod(rest, 2)
        r = rng.random()
        if r < 0.90:
            role, subrole, cls, cabinet = "Compute", "", "Mountain", 1100 + cab
        elif r < 0.95:
            role, subrole, cls, cabinet = "Application", "UAN", "River", 3100 + cab
        elif r < 0.98:
            role, subrole, cls, cabinet = "Service", "", "River", 3100 + cab
        else:
            role, subrole, cls, cabinet = "Storage", "", "River", 3100 + cab
        xname = f"x{cabinet}c{chassis}s{slot}b{bmc}n{node}"
        arch = "ARM" if rng.random() < 0.15 else "X86"
        s = rng.random()
        state, flag = ("Ready", "OK") if s < 0.9 else ("Off", "OK") if s < 0.95 else \
            ("On", "OK") if s < 0.98 else ("Standby", "Alert")
        nid = 200001 + k
        comps.append((xname, "Node", state, flag, 1, "", role, subrole, nid, "", "Sling", arch, cls, 0, 0))
        mac = mac_for(xname)
        ip = f"10.253.{k // 250}.{1 + k % 250}"
        ifaces.append((mac.replace(":", ""), hostname_for(nid), mac, xname, "Node", now,
                       f'[{{"IPAddress":"{ip}","Network":"NMN"}}]'))
        records.append((xname, role, arch))
    xnames = [x for x, _, _ in records]
    out_groups: list[dict] = []
    n_vc = max(1, groups // 4) if groups else 0
    slice_len = max(1, len(xnames) // (n_vc * 2)) if n_vc else 0
    for g in range(min(n_vc, groups)):
        members = xnames[g * slice_len:(g + 1) * slice_len]
        out_groups.append({"label": f"vc_{g:02d}", "description": f"vCluster {g:02d}",
                           "tags": ["vcluster"], "exclusive_group": "vcluster", "members": members})
    shapes = [
        ("x86", lambda x, role, arch: arch == "X86", ["arch"]),
        ("arm", lambda x, role, arch: arch == "ARM", ["arch"]),
        ("compute", lambda x, role, arch: role == "Compute", ["role"]),
        ("uan", lambda x, role, arch: role == "Application", ["role"]),
        ("storage", lambda x, role, arch: role == "Storage", ["role"]),
        ("gpu", lambda x, role, arch: hash_frac(x) < 0.2, ["hardware"]),
        ("ssd", lambda x, role, arch: hash_frac(x, "ssd") < 0.3, ["hardware"]),
    ]
    i = 0
    while len(out_groups) < groups:
        if i < len(shapes):
            label, pred, tags = shapes[i]
            members = [x for x, role, arch in records if pred(x, role, arch)]
        else:
            n = i - len(shapes)
            label, tags = f"rack_{n:03d}", ["rack"]
            span = max(1, len(xnames) // max(1, groups - len(shapes) - n_vc))
            members = xnames[n * span:(n + 1) * span]
        out_groups.append({"label": label, "description": f"seeded group {label}", "tags": tags,
                           "exclusive_group": "", "members": members})
        i += 1
    out_parts: list[dict] = []
    if partitions:
        span = -(-len(xnames) // partitions)
        for p in range(partitions):
            out_parts.append({"name": f"p{p + 1}", "description": f"seeded partition p{p + 1}",
                              "tags": [], "members": xnames[p * span:(p + 1) * span]})
    return SeedSite(comps, ifaces, out_groups, out_parts)


def hash_frac(xname: str, salt: str = "") -> float:
    return int(hashlib.sha1((salt + xname).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
