"""The podman node driver against real podman: power, reboots, images, VLAN isolation.

Nodes live on a private management subnet (10.247.0.0/16) and prefix so a developer's lab
(10.252.0.0/16, prefix vclab) keeps running alongside.
"""
from __future__ import annotations

import hashlib
import subprocess
from types import SimpleNamespace

import pytest
from podman_helpers import inspect, new_prefix, podman, shared_base, tcp_open, teardown

from vcluster_lab import images
from vcluster_lab.nodes.base import DriverError, NodeSpec
from vcluster_lab.nodes.podman import PodmanDriver, vlan_subnet
from vcluster_lab.ssh import ssh_argv

SUBNET = "10.247.0.0/16"
VLAN_A, VLAN_B, VLAN_C = 3901, 3902, 3903


def spec(i: int) -> NodeSpec:
    xname = f"x1000c0s{i}b0n0"
    mac = "02:" + ":".join(f"{b:02x}" for b in hashlib.sha1(xname.encode()).digest()[:5])
    return NodeSpec(xname, i + 1, f"nid{i + 1:06d}", mac, f"10.247.1.{i + 1}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    prefix = new_prefix()
    home = tmp_path_factory.mktemp("labhome")
    base = shared_base()
    driver = PodmanDriver(home, prefix=prefix, mgmt_subnet=SUBNET)
    try:
        yield SimpleNamespace(prefix=prefix, home=home, driver=driver, base=base.ref,
                              key=home / "ssh" / "id_ed25519")
    finally:
        teardown(prefix)


def ssh(lab, node: NodeSpec, command: str) -> str:
    proc = subprocess.run(ssh_argv(lab.key, node.ip, command), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, f"ssh {node.ip} {command}: {proc.stderr}"
    return proc.stdout.strip()


def test_power_cycle_reboots_and_ssh(lab):
    d, n0, n1 = lab.driver, spec(0), spec(1)
    d.power_on(n0, lab.base)
    d.power_on(n1, lab.base)
    assert d.power_state([n0.xname, n1.xname, "x1000c0s99b0n0"]) == {
        n0.xname: "on", n1.xname: "on", "x1000c0s99b0n0": "undefined"}
    d.wait_ready([n0.xname, n1.xname])

    # Identity from SMD, and what must differ between nodes made from one image.
    assert ssh(lab, n0, "hostname") == "nid000001"
    assert ssh(lab, n0, "cat /sys/class/net/eth0/address") == n0.mac
    keys = {ssh(lab, n, "cat /etc/ssh/ssh_host_ed25519_key.pub") for n in (n0, n1)}
    ids = {ssh(lab, n, "cat /etc/machine-id") for n in (n0, n1)}
    assert len(keys) == 2 and len(ids) == 2
    assert ssh(lab, n0, "getent hosts nid000002").split()[0] == n1.ip

    # A diskless node: every boot starts from the image, nothing written before survives.
    name = d.container(n0.xname)
    cid = inspect(name, "{{.Id}}")
    ssh(lab, n0, "echo before > /var/tmp/state")
    d.restart(n0, lab.base)  # soft
    new_cid = inspect(name, "{{.Id}}")
    assert new_cid != cid
    d.wait_ready([n0.xname])
    assert ssh(lab, n0, "cat /var/tmp/state 2>/dev/null || echo gone") == "gone"
    assert ssh(lab, n0, "hostname") == "nid000001"
    d.restart(n0, lab.base, hard=True)
    assert inspect(name, "{{.Id}}") != new_cid
    d.power_on(n0, lab.base)  # already on from the same image: nothing happens
    assert d.power_state([n0.xname]) == {n0.xname: "on"}
    d.wait_ready([n0.xname])
    assert ssh(lab, n0, "systemctl is-system-running") == "running"

    d.power_off(n0.xname)
    assert d.power_state([n0.xname]) == {n0.xname: "off"}
    d.power_off(n0.xname)  # already off: no error
    off_cid = inspect(name, "{{.Id}}")
    d.power_on(n0, lab.base)
    assert d.power_state([n0.xname]) == {n0.xname: "on"}
    assert inspect(name, "{{.Id}}") != off_cid  # booted from a pristine root, not restarted

    d.kill(n1.xname)  # the node dies
    assert d.power_state([n1.xname]) == {n1.xname: "off"}
    assert inspect(d.container(n1.xname), "{{.State.ExitCode}}") != "0"
    d.kill(n1.xname)
    d.power_off("x1000c0s98b0n0")  # never powered: nothing to do
    d.remove_node(n1.xname)
    assert d.power_state([n1.xname]) == {n1.xname: "undefined"}


def test_reboot_into_new_image_keeps_vlans(lab, tmp_path):
    d, n = lab.driver, spec(3)
    d.power_on(n, lab.base)
    d.vlan_attach(VLAN_C, [n.xname])
    recipe = {"options": {"name": f"{lab.prefix}-v2", "parent": lab.base, "pkg_manager": "apt"},
              "cmds": [{"cmd": "echo v2 > /etc/vclab-release"}]}
    built = images.build_recipe(recipe, tags=["1"], builder="pytest", prefix=lab.prefix)
    assert d.image_exists(built.ref) and not d.image_exists("localhost/nope:0")
    name = d.container(n.xname)
    before = inspect(name, "{{.Id}}")
    d.restart(n, built.ref)
    assert inspect(name, "{{.Id}}") != before
    assert inspect(name, "{{.Image}}") == built.digest.removeprefix("sha256:")
    d.wait_ready([n.xname])
    assert ssh(lab, n, "cat /etc/vclab-release") == "v2"
    vlan_ip = str(vlan_subnet(VLAN_C, d.mgmt_subnet).network_address + 5)
    assert vlan_ip in ssh(lab, n, "ip -4 -o addr show")
    d.power_on(n, lab.base)  # powering on into the old image recreates it again
    assert inspect(name, "{{.Image}}") == images.image_id(lab.base).removeprefix("sha256:")
    d.vlan_delete(VLAN_C)
    d.remove_node(n.xname)


def test_vlan_isolation(lab):
    d = lab.driver
    a0, a1, b0 = spec(4), spec(5), spec(6)
    for node in (a0, a1, b0):
        d.power_on(node, lab.base)
    d.vlan_attach(VLAN_A, [a0.xname, a1.xname])
    d.vlan_attach(VLAN_B, [b0.xname])
    d.vlan_attach(VLAN_A, [a0.xname])  # already attached: nothing changes
    d.wait_ready([a0.xname, a1.xname, b0.xname])
    net_a, net_b = vlan_subnet(VLAN_A, d.mgmt_subnet), vlan_subnet(VLAN_B, d.mgmt_subnet)
    ip_a0, ip_a1 = str(net_a.network_address + 6), str(net_a.network_address + 7)
    ip_b0 = str(net_b.network_address + 8)
    c = {n.xname: d.container(n.xname) for n in (a0, a1, b0)}

    # Same VLAN: reachable both ways on the VLAN's addresses.
    assert tcp_open(c[a0.xname], ip_a1) and tcp_open(c[a1.xname], ip_a0)
    # The B node is alive and reachable on the management network...
    assert tcp_open(c[b0.xname], a0.ip)
    # ...but not on A's addresses, nor A's nodes on B's.
    assert not tcp_open(c[b0.xname], ip_a0) and not tcp_open(c[b0.xname], ip_a1)
    assert not tcp_open(c[a0.xname], ip_b0) and not tcp_open(c[a1.xname], ip_b0)
    # Not even when B's node routes A's subnet through its management interface.
    pid = inspect(c[b0.xname], "{{.State.Pid}}")
    subprocess.run(["nsenter", "-t", pid, "-n", "ip", "route", "replace", str(net_a),
                    "via", "10.247.0.1"], check=True)
    assert not tcp_open(c[b0.xname], ip_a0)

    d.vlan_detach(VLAN_A, [a1.xname])
    d.vlan_detach(VLAN_A, [a1.xname])  # not attached: no error
    assert not tcp_open(c[a0.xname], ip_a1)
    assert tcp_open(c[a0.xname], a1.ip)

    d.vlan_delete(VLAN_A)  # a0 is still attached: detached first
    assert podman("network", "exists", d.vlan_network(VLAN_A), check=False).returncode == 1
    assert d.power_state([a0.xname]) == {a0.xname: "on"}
    d.vlan_delete(VLAN_A)  # gone already: no error
    d.vlan_delete(VLAN_B)
    for node in (a0, a1, b0):
        d.remove_node(node.xname)


def test_errors_name_the_node_and_the_cause(lab):
    d, n = lab.driver, spec(7)
    with pytest.raises(DriverError, match=rf"node {n.xname}: cannot boot image localhost/nope:1"):
        d.power_on(n, "localhost/nope:1")
    with pytest.raises(DriverError, match=r"x1000c0s97b0n0: cannot attach to VLAN 3904"):
        d.vlan_attach(3904, ["x1000c0s97b0n0"])
    outside = NodeSpec(n.xname, n.nid, n.hostname, n.mac, "192.168.1.1")
    with pytest.raises(DriverError, match=r"192\.168\.1\.1 is outside the management network"):
        d.power_on(outside, lab.base)
    with pytest.raises(DriverError, match="between 1 and 4094"):
        d.vlan_attach(5000, [n.xname])
    # podman's own reason reaches the caller, with the node named.
    d.power_on(n, lab.base)
    twin = NodeSpec("x1000c0s8b0n0", 9, "nid000009", spec(8).mac, n.ip)  # same address
    with pytest.raises(DriverError, match=r"node x1000c0s8b0n0: power on from .*: podman run "
                                          r"failed: .*10\.247\.1\.8"):
        d.power_on(twin, lab.base)
    d.remove_node(twin.xname)
    d.remove_node(n.xname)
