"""The ``podman`` node driver: each lab node is a podman container running systemd and sshd.

A node container is what a real node is to the management plane: powering it on boots
its image (the one its BSS boot parameters name), a soft restart is ``podman restart``
(systemd shuts down and boots again), a hard one is kill + start, and a node booted into
another image is recreated from it. Its management address, MAC and hostname are the
ones SMD holds. A fabric-manager VLAN is a podman network of its own that only the
nodes put on it share.
"""
from __future__ import annotations

import fnmatch
import ipaddress
import json
import os
import threading
import time
from pathlib import Path

from .. import images, tls
from .. import inventory_data as inv
from ..containers import (LAB_LABEL, NODE_LABEL, PREFIX_LABEL, RUN_OPTIONS, XNAME_LABEL, PodmanError, image_id,
                          is_lab_row, lab_filter, lab_labels, lab_prefix, podman, podman_json, wait_systemd)
from ..ssh import ensure_key, sshd_answers
from .base import BuiltImage, DriverError, NodeSpec

MGMT_SUBNET = inv.MGMT_NETWORK
NID_LABEL = "io.vcluster.lab.nid"
IP_LABEL = "io.vcluster.lab.ip"
MAC_LABEL = "io.vcluster.lab.mac"
VLAN_LABEL = "io.vcluster.lab.vlan"
#: Gives lab nodes the state they would have on real hardware: no "created" limbo.
_ON = {"running", "paused", "stopping"}
#: The devices a lab node has, as its real counterpart would, by the kind of node (the NID
#: tells: service nodes are 100001 and up). Only devices, never --privileged (the one capability
#: a node can get, for uenv, is given by name: :data:`UENV_NODES_ENV`).
#: Every node has FUSE (squashfuse, fuse-overlayfs: enroot, rootless podman); a compute node
#: has a Slingshot NIC, played by a harmless null device named as the cxi driver names its
#: nodes, for the CDI vService to find and give to containers.
NODE_DEVICES = {
    "all": ("/dev/fuse",),
    "compute": ("/dev/null:/dev/cxi0:rw",),
    "service": (),
}


#: The lab setting naming the nodes that can mount uenv images (xnames or shell patterns,
#: separated by commas or spaces; empty: none). Such a node gets, besides its devices,
#: :data:`UENV_CAPABILITY` and :data:`UENV_DEVICES`: squashfs-mount and uenv's Slurm plugin
#: mount SquashFS images through loop devices, which needs CAP_SYS_ADMIN in the node. Only
#: these nodes get it (not every node: a capability is given where a vService needs it), and
#: never --privileged: /proc/sys and /sys stay read-only, no other capability or device is
#: added, the cgroup namespace is the same as every node's (docs/lab.md, "uenv-capable nodes").
UENV_NODES_ENV = "VCLUSTER_LAB_UENV_NODES"
UENV_CAPABILITY = "SYS_ADMIN"
#: The kernel hands out loop0 first; eight are what the host has by default.
UENV_DEVICES = ("/dev/loop-control", *(f"/dev/loop{i}" for i in range(8)))


def uenv_capable(xname: str, setting: str | None = None) -> bool:
    """Whether node ``xname`` is named by the uenv-capable nodes setting (:data:`UENV_NODES_ENV`)."""
    setting = os.environ.get(UENV_NODES_ENV, "") if setting is None else setting
    return any(fnmatch.fnmatchcase(xname, pattern) for pattern in setting.replace(",", " ").split())


def node_devices(nid: int, xname: str = "") -> list[str]:
    """The ``--device`` (and, for a uenv-capable node, ``--cap-add``) arguments of a node
    (see :data:`NODE_DEVICES` and :data:`UENV_NODES_ENV`)."""
    kind = "service" if int(nid) >= 100001 else "compute"
    out = []
    for device in NODE_DEVICES["all"] + NODE_DEVICES[kind]:
        if os.path.exists(device.split(":", 1)[0]):  # a host without FUSE boots nodes without it
            out += ["--device", device]
    if xname and uenv_capable(xname):
        out += ["--cap-add", UENV_CAPABILITY]
        for device in UENV_DEVICES:
            if os.path.exists(device):
                out += ["--device", device]
    return out


def vlan_subnet(vlan_id: int, mgmt: ipaddress.IPv4Network | None = None) -> ipaddress.IPv4Network:
    """The VLAN's subnet, 10.(100 + id//256).(id%256).0/24 on the NMN's site, 16 higher per
    site after it (architecture.md; ``mgmt`` is the lab's management network)."""
    if not 1 <= int(vlan_id) <= 4094:
        raise DriverError(f"VLAN {vlan_id}: a VLAN id is between 1 and 4094")
    return ipaddress.IPv4Network(f"10.{inv.vlan_octet(vlan_id, mgmt)}.{vlan_id % 256}.0/24")


def vlan_host(nid: int) -> int:
    """A node's host number on any VLAN, from its NID: computes .2-.201, services .202-.251.

    The gateway podman puts on the bridge is .1. Two nodes collide only when more than
    200 compute (or 50 service) nodes share one VLAN.
    """
    if nid >= 100001:
        return 202 + (nid - 100001) % 50
    return 2 + (nid - 1) % 200


def subnet_holder(subnet: ipaddress.IPv4Network) -> dict | None:
    """The podman network (its ``network ls`` row) whose subnet overlaps ``subnet``, if any."""
    for net in podman_json("network", "ls", "--format", "json", what="networks") or []:
        for sub in net.get("subnets") or []:
            try:
                if ipaddress.ip_network(sub.get("subnet", "")).overlaps(subnet):
                    return net
            except ValueError:
                continue
    return None


def holder_prefix(net: dict) -> str:
    """The prefix of the lab that made podman network row ``net``, '' when no lab made it."""
    labels = net.get("labels") or {}
    return labels.get(PREFIX_LABEL, "") if labels.get(LAB_LABEL) == "1" else ""


def holder_text(net: dict) -> str:
    """Names the network that holds a range, and how to free it."""
    prefix = holder_prefix(net)
    if prefix:
        return (f"podman network {net['name']} (lab {prefix}: 'VCLUSTER_LAB_PREFIX={prefix} "
                "vcluster-lab down' if it is yours; two labs cannot share the NMN range)")
    return f"podman network {net['name']} (not a lab's: 'podman network rm {net['name']}' if it is unused)"


#: Where a node finds its host certificate, key and the site's CA (:meth:`PodmanDriver.node_tls`).
NODE_TLS_DIR = "/etc/vcluster-lab/tls"


class PodmanDriver:
    """Lab nodes as podman containers (see the module docstring)."""

    name = "podman"

    def __init__(self, home: str | Path, prefix: str | None = None,
                 mgmt_subnet: str | None = None):
        self.home = Path(home)
        self.prefix = prefix or lab_prefix()
        self.mgmt_network = f"{self.prefix}-mgmt"
        try:
            self.mgmt_subnet = inv.mgmt_network(mgmt_subnet)  # $VCLUSTER_LAB_MGMT_NETWORK by default
        except ValueError as exc:
            raise DriverError(str(exc)) from None
        self.pubkey = ensure_key(self.home).with_suffix(".pub")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -------------------------------------------------------------- names and locks
    def container(self, xname: str) -> str:
        return f"{self.prefix}-{xname}"

    def vlan_network(self, vlan_id: int) -> str:
        return f"{self.prefix}-vlan{int(vlan_id)}"

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    # -------------------------------------------------------------- inspection
    def _inspect(self, xname: str) -> dict | None:
        proc = podman("container", "inspect", self.container(xname), check=False,
                      what=f"node {xname}")
        if proc.returncode != 0:
            if "no such" in proc.stderr.lower():
                return None
            raise PodmanError(f"node {xname}", ["container", "inspect"], proc.returncode,
                              proc.stderr)
        data = json.loads(proc.stdout)
        return data[0] if data else None

    def power_state(self, xnames: list[str]) -> dict[str, str]:
        """One ``podman ps`` for all nodes: ``on``, ``off`` or ``undefined`` (no container)."""
        rows = podman_json("ps", "-a", "--format", "json",
                           "--filter", f"label={NODE_LABEL}={self.prefix}",
                           what="power state") or []
        states = {}
        for row in rows:
            xname = (row.get("Labels") or {}).get(XNAME_LABEL)
            if xname:
                states[xname] = "on" if row.get("State") in _ON else "off"
        return {x: states.get(x, "undefined") for x in xnames}

    def nodes(self) -> dict[str, dict]:
        """Every node container of this lab: xname -> {state, ip, hostname, image}."""
        rows = podman_json("ps", "-a", "--format", "json",
                           "--filter", f"label={NODE_LABEL}={self.prefix}",
                           what="lab nodes") or []
        out = {}
        for row in rows:
            labels = row.get("Labels") or {}
            if XNAME_LABEL in labels:
                out[labels[XNAME_LABEL]] = {
                    "state": "on" if row.get("State") in _ON else "off",
                    "ip": labels.get(IP_LABEL, ""), "image": row.get("Image", ""),
                    "container": (row.get("Names") or [""])[0],
                    "status": row.get("Status", "")}
        return out

    # -------------------------------------------------------------- networks
    def _ensure_network(self, name: str, subnet: ipaddress.IPv4Network, extra: list[str],
                        what: str) -> None:
        """Create a lab network unless it exists (threads and processes may race here)."""
        with self._lock(f"net:{name}"):
            if podman("network", "exists", name, check=False, what=what).returncode == 0:
                return
            proc = podman("network", "create", *lab_labels(self.prefix), *extra,
                          "--subnet", str(subnet), name, check=False, what=what)
            if proc.returncode != 0 and podman("network", "exists", name, check=False,
                                                 what=what).returncode != 0:
                holder = subnet_holder(subnet)
                if holder:
                    raise DriverError(f"{what}: subnet {subnet} is already used by {holder_text(holder)}")
                raise PodmanError(what, ["network", "create"], proc.returncode, proc.stderr)

    def ensure_mgmt_network(self) -> None:
        """The management network (NMN). Isolated too: see :meth:`vlan_attach`."""
        self._ensure_network(self.mgmt_network, self.mgmt_subnet, ["-o", "isolate=true"],
                             f"management network {self.mgmt_network}")

    # -------------------------------------------------------------- power
    def _image_id(self, xname: str, image: str) -> str:
        found = image_id(image)
        if found is None:
            raise DriverError(f"node {xname}: cannot boot image {image}: no such podman image "
                              "(build it with 'vcluster-lab image build' or IMS)")
        return found

    def _matches(self, info: dict, node: NodeSpec, want_image: str) -> bool:
        labels = info.get("Config", {}).get("Labels") or {}
        have = "sha256:" + str(info.get("Image", "")).removeprefix("sha256:")
        return (have == want_image and labels.get(IP_LABEL) == node.ip
                and labels.get(MAC_LABEL) == node.mac.lower()
                and info.get("Config", {}).get("Hostname") == node.hostname)

    def _vlans_of(self, info: dict | None) -> list[str]:
        nets = (info or {}).get("NetworkSettings", {}).get("Networks") or {}
        return sorted(n for n in nets if n.startswith(f"{self.prefix}-vlan"))

    def node_tls(self, node: NodeSpec) -> Path:
        """The site PKI's files for ``node`` (mounted read-only at :data:`NODE_TLS_DIR`): its host
        certificate for its address, host name and xname, and for localhost (a service's own health
        check on the node) (``host.pem``, ``host-key.pem`` 0600),
        signed by the lab's CA (``ca.pem``), as a site's PKI provisions its nodes; a service on the
        node (FirecREST) serves TLS with them. Issued once, kept while it names the node."""
        where = self.home / "tls" / "nodes" / node.xname
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        tls.issue_server_cert(self.home, where / "host.pem", where / "host-key.pem",
                              [node.ip, node.hostname, node.xname, "localhost", "127.0.0.1"])
        ca = (self.home / "tls" / "ca.pem").read_bytes()
        if not (where / "ca.pem").is_file() or (where / "ca.pem").read_bytes() != ca:
            (where / "ca.pem").write_bytes(ca)
        return where

    def _create(self, node: NodeSpec, image: str, vlans: list[str]) -> None:
        ip = ipaddress.IPv4Address(node.ip)
        if ip not in self.mgmt_subnet:
            raise DriverError(f"node {node.xname}: address {node.ip} is outside the management "
                              f"network {self.mgmt_network} ({self.mgmt_subnet})")
        self.ensure_mgmt_network()
        mac = node.mac.lower()
        nets = ["--network", f"{self.mgmt_network}:ip={node.ip},mac={mac},alias={node.hostname}"]
        for net in vlans:
            vlan_id = int(net.rsplit("vlan", 1)[1])
            nets += ["--network", f"{net}:ip={self._vlan_ip(vlan_id, node.nid)},"
                                  f"alias={node.hostname}"]
        podman("run", "-d", "--name", self.container(node.xname), "--hostname", node.hostname,
               *lab_labels(self.prefix), "--label", f"{NODE_LABEL}={self.prefix}",
               "--label", f"{XNAME_LABEL}={node.xname}", "--label", f"{NID_LABEL}={node.nid}",
               "--label", f"{IP_LABEL}={node.ip}", "--label", f"{MAC_LABEL}={mac}",
               "--systemd=always", *RUN_OPTIONS, *node_devices(node.nid, node.xname), *nets,
               "-v", f"{self.pubkey}:/root/.ssh/authorized_keys:ro",
               "-v", f"{self.node_tls(node)}:{NODE_TLS_DIR}:ro",
               image, what=f"node {node.xname}: power on from {image}")

    def _remove(self, xname: str) -> None:
        podman("rm", "-f", "-t", "0", "--ignore", self.container(xname), what=f"node {xname}")

    def power_on(self, node: NodeSpec, image: str) -> None:
        """Boot ``image`` from a pristine root file system (a diskless node), keeping its VLANs.

        Real OpenCHAMI and CSM compute nodes boot a read-only image with a tmpfs overlay:
        nothing written before a power cycle survives it. The lab does the same by making
        a new container at every boot; a node that is already on is left alone.
        """
        with self._lock(node.xname):
            want = self._image_id(node.xname, image)  # names the node and image when it does not exist
            info = self._inspect(node.xname)
            if info is not None and info.get("State", {}).get("Status") in _ON and self._matches(info, node, want):
                return
            self._boot(node, image, info)

    def _boot(self, node: NodeSpec, image: str, info: dict | None) -> None:
        vlans = self._vlans_of(info) if info is not None else []
        if info is not None:
            self._remove(node.xname)
        self._create(node, image, vlans)

    def power_off(self, xname: str, force: bool = False) -> None:
        """Shut the node down (systemd halts), or pull the plug when ``force``."""
        with self._lock(xname):
            info = self._inspect(xname)
            if info is None or info.get("State", {}).get("Status") not in _ON:
                return
            if force:
                podman("kill", self.container(xname), check=False, what=f"node {xname}: power off")
                podman("stop", "-t", "0", self.container(xname), check=False, what=f"node {xname}")
            else:
                podman("stop", "-t", "30", self.container(xname), what=f"node {xname}: power off")

    def restart(self, node: NodeSpec, image: str, hard: bool = False) -> None:
        """Reboot: a clean shutdown (soft) or none (hard), then a boot from a pristine root."""
        with self._lock(node.xname):
            self._image_id(node.xname, image)
            info = self._inspect(node.xname)
            name = self.container(node.xname)
            if info is not None and info.get("State", {}).get("Status") in _ON:
                if hard:
                    podman("kill", name, check=False, what=f"node {node.xname}: hard restart")
                podman("stop", "-t", "0" if hard else "30", name, check=False, what=f"node {node.xname}: restart")
            self._boot(node, image, info)

    def kill(self, xname: str) -> None:
        """The node dies: SIGKILL to its init, no shutdown. No error if it is already off."""
        with self._lock(xname):
            info = self._inspect(xname)
            if info is not None and info.get("State", {}).get("Status") in _ON:
                podman("kill", self.container(xname), what=f"node {xname}: kill")

    def remove_node(self, xname: str) -> None:
        with self._lock(xname):
            self._remove(xname)

    # -------------------------------------------------------------- VLANs
    def _vlan_ip(self, vlan_id: int, nid: int) -> str:
        return str(vlan_subnet(vlan_id, self.mgmt_subnet).network_address + vlan_host(int(nid)))

    def vlan_attach(self, vlan_id: int, xnames: list[str]) -> None:
        """Put the nodes on VLAN ``vlan_id``: its own isolated podman network.

        netavark's ``isolate`` drops traffic forwarded from one isolated bridge to another,
        but not from a non-isolated one; the management network is isolated as well, so a
        node cannot reach another VLAN's addresses through its management interface either.
        """
        net = self.vlan_network(vlan_id)
        self._ensure_network(net, vlan_subnet(vlan_id, self.mgmt_subnet),
                             ["-o", "isolate=true", "--label", f"{VLAN_LABEL}={vlan_id}"],
                             f"VLAN {vlan_id} network {net}")
        for xname in xnames:
            with self._lock(xname):
                info = self._inspect(xname)
                if info is None:
                    raise DriverError(f"node {xname}: cannot attach to VLAN {vlan_id}: the node "
                                      "has never been powered on (no container)")
                if net in (info.get("NetworkSettings", {}).get("Networks") or {}):
                    continue
                nid = int((info.get("Config", {}).get("Labels") or {}).get(NID_LABEL, 0))
                if not nid:
                    raise DriverError(f"node {xname}: container has no NID label: not made by the lab")
                hostname = info.get("Config", {}).get("Hostname", "")
                podman("network", "connect", "--ip", self._vlan_ip(vlan_id, nid),
                       *(["--alias", hostname] if hostname else []), net, self.container(xname),
                       what=f"node {xname}: attach to VLAN {vlan_id}")

    def vlan_detach(self, vlan_id: int, xnames: list[str]) -> None:
        net = self.vlan_network(vlan_id)
        for xname in xnames:
            with self._lock(xname):
                info = self._inspect(xname)
                if info is None or net not in (info.get("NetworkSettings", {}).get("Networks") or {}):
                    continue
                podman("network", "disconnect", net, self.container(xname),
                       what=f"node {xname}: detach from VLAN {vlan_id}")

    def vlan_delete(self, vlan_id: int) -> None:
        """Detach every container still on the VLAN, then remove its network."""
        net = self.vlan_network(vlan_id)
        what = f"VLAN {vlan_id} network {net}"
        if podman("network", "exists", net, check=False, what=what).returncode != 0:
            return
        rows = podman_json("ps", "-a", "--format", "json", "--filter", f"network={net}",
                           what=what) or []
        for row in rows:
            for name in row.get("Names") or []:
                podman("network", "disconnect", net, name, check=False, what=what)
        podman("network", "rm", net, what=what)

    # -------------------------------------------------------------- images
    def image_exists(self, ref: str) -> bool:
        return image_id(ref) is not None

    def build_image(self, recipe: dict, name: str, tag: str, builder: str) -> BuiltImage:
        return images.build_recipe(recipe, name=name, tags=[tag], builder=builder,
                                   prefix=self.prefix)

    # -------------------------------------------------------------- readiness
    def wait_ready(self, xnames: list[str], timeout: float = 120) -> None:
        """Wait until systemd has finished booting and sshd answers on every node."""
        deadline = time.monotonic() + timeout
        for xname in xnames:
            wait_systemd(self.container(xname), deadline, f"node {xname}")
            info = self._inspect(xname) or {}
            ip = (info.get("Config", {}).get("Labels") or {}).get(IP_LABEL, "")
            while not sshd_answers(ip):
                if time.monotonic() > deadline:
                    raise DriverError(f"node {xname}: sshd does not answer on {ip}:22 "
                                      f"after {timeout:.0f} s")
                time.sleep(0.3)


def make_driver(home: str | Path) -> PodmanDriver:
    """The driver the control plane uses (prefix from ``$VCLUSTER_LAB_PREFIX``)."""
    return PodmanDriver(home, prefix=os.environ.get("VCLUSTER_LAB_PREFIX") or None)


def _remove_containers(names: list[str]) -> None:
    """``podman rm -f`` the lab's containers; a container caught between states by a killed run
    ("container state improper") is stopped and removed once more before it counts as a failure."""
    proc = podman("rm", "-f", "-t", "5", "--ignore", *names, check=False, what="lab teardown: containers")
    if proc.returncode == 0:
        return
    time.sleep(3)
    podman("stop", "-t", "5", "--ignore", *names, check=False, what="lab teardown: containers")
    podman("rm", "-f", "-t", "5", "--ignore", *names, what="lab teardown: containers")


def remove_lab(prefix: str, keep_images: bool = False) -> dict[str, list[str]]:
    """Remove what lab ``prefix`` made, found by its labels, and nothing else.

    Node containers carry ``io.vcluster.lab.node=<prefix>`` (a label images never have,
    so a container someone ran from a lab image is not taken for a node), site-service
    containers ``io.vcluster.lab.site=<prefix>``; build containers are ``<prefix>-build-*``;
    networks and images carry the prefix label.
    Images are removed tag by tag, newest first, never with ``--force`` (which would also
    remove other people's containers): an image still in use is reported as kept.
    """
    removed: dict[str, list[str]] = {"containers": [], "networks": [], "images": [], "kept": []}
    rows = podman_json("ps", "-a", "--format", "json", "--filter",
                       f"label={NODE_LABEL}={prefix}", what="lab teardown") or []
    rows += podman_json("ps", "-a", "--format", "json", "--filter",
                        f"name=^{prefix}-build-", what="lab teardown") or []
    # site services (site_services.SITE_LABEL, on their containers only)
    rows += podman_json("ps", "-a", "--format", "json", "--filter",
                        f"label=io.vcluster.lab.site={prefix}", what="lab teardown") or []
    rows += podman_json("ps", "-a", "--format", "json", "--filter",
                        f"name=^{prefix}-preflight-", what="lab teardown") or []
    names = sorted({(r.get("Names") or [r["Id"]])[0] for r in rows})
    if names:
        _remove_containers(names)
        removed["containers"] = names
    nets = [n["name"] for n in podman_json("network", "ls", "--format", "json",
                                           *lab_filter(prefix), what="lab teardown") or []
            if is_lab_row(n.get("labels"), prefix)]
    for net in sorted(nets, key=lambda n: n.endswith("-mgmt")):
        proc = podman("network", "rm", net, check=False, what="lab teardown")
        if proc.returncode != 0 and ("in use" in proc.stderr or "being used" in proc.stderr):
            # a container the listing missed (killed mid-create, no labels yet) still holds the
            # lab's own network: -f removes the containers on it, and the network is the lab's
            proc = podman("network", "rm", "-f", "-t", "5", net, check=False, what="lab teardown")
        (removed["networks"] if proc.returncode == 0 else removed["kept"]).append(
            net if proc.returncode == 0 else f"network {net}: {proc.stderr.strip()}")
    if keep_images:
        return removed
    for row in sorted(images.lab_images(prefix), key=lambda r: r.get("Created", 0), reverse=True):
        refs = sorted({n for n in row.get("Names") or [] if not n.endswith(":<none>")}) or [row["Id"]]
        for ref in refs:
            proc = podman("rmi", ref, check=False, what="lab teardown")
            if proc.returncode == 0:
                removed["images"].append(ref)
            else:
                removed["kept"].append(f"image {ref}: {proc.stderr.strip().splitlines()[-1]}")
    return removed
