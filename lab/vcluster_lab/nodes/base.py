"""The contract between the control plane and whatever plays the nodes.

The control plane (PCS transitions, fabric-manager VLANs, IMS jobs, faults) calls a
NodeDriver; it never runs podman itself. Two drivers exist: ``records`` (no containers:
power state is remembered, for ``seed`` and for scale tests) and ``podman`` (real
containers with systemd and sshd). Every call is synchronous and may take seconds; the
control plane calls them from worker threads, never from a request handler.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """What a driver needs to know to make a node: all of it comes from SMD."""

    xname: str
    nid: int
    hostname: str
    mac: str
    ip: str  # management-network (NMN) address


@dataclasses.dataclass(frozen=True)
class BuiltImage:
    """A built image and where it came from (recorded in IMS and image labels)."""

    ref: str  # podman reference, e.g. localhost/compute-base:2026.11
    digest: str  # sha256:... of the image
    labels: dict


class DriverError(Exception):
    """A node operation failed; the message says why in terms an operator understands."""


class NodeDriver(Protocol):
    name: str

    def power_on(self, node: NodeSpec, image: str) -> None:
        """Boot the node from ``image``: create its container, or start it; recreate it when the image differs."""

    def power_off(self, xname: str, force: bool = False) -> None:
        """Stop the node (graceful unless force). No error if it is already off."""

    def restart(self, node: NodeSpec, image: str, hard: bool = False) -> None:
        """Reboot the node; boots ``image``, recreating the container when the image changed."""

    def power_state(self, xnames: list[str]) -> dict[str, str]:
        """Map each xname to ``on``, ``off`` or ``undefined`` (no such node)."""

    def kill(self, xname: str) -> None:
        """Fault injection: the node dies at once (no clean shutdown)."""

    def vlan_attach(self, vlan_id: int, xnames: list[str]) -> None:
        """Connect the nodes to the VLAN's network, creating the network if needed."""

    def vlan_detach(self, vlan_id: int, xnames: list[str]) -> None:
        """Disconnect the nodes from the VLAN's network; no error if not connected."""

    def vlan_delete(self, vlan_id: int) -> None:
        """Remove the VLAN's network (after detaching every node)."""

    def image_exists(self, ref: str) -> bool:
        """Whether a bootable image with this reference exists."""

    def build_image(self, recipe: dict, name: str, tag: str, builder: str) -> BuiltImage:
        """Build ``recipe`` (image-builder style: options.parent, packages, cmds) into name:tag."""

    def remove_node(self, xname: str) -> None:
        """Remove everything the driver made for this node."""
