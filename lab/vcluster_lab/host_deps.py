"""What the project runs on the host, and the Debian package each executable comes from.

One table for three readers: ``vcluster-lab up``'s preflight (what the lab needs, with the
command that installs it), the fresh-root test (every executable here resolves in a clean
Debian 12 root after the Makefile's dependency step), and the unit test that keeps the
Makefile's ``APT_PACKAGES``, ``bindep.txt`` and this table in step.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class HostTool:
    """An executable the project runs on the host."""

    name: str
    package: str
    #: who runs it: "lab" (vcluster-lab itself), "tests", "make", "ansible" (the controller)
    users: tuple[str, ...]
    why: str
    #: where it lives when it is not on PATH (podman's helper binaries)
    location: str = ""

    def resolves(self, path: str | None = None) -> bool:
        """Whether the executable is there (on ``path``, or at its fixed location)."""
        if self.location:
            return os.access(self.location, os.X_OK)
        return shutil.which(self.name, path=path) is not None


TOOLS: tuple[HostTool, ...] = (
    HostTool("podman", "podman", ("lab", "tests"), "lab nodes, site services and Molecule instances are podman containers"),
    HostTool("conmon", "conmon", ("lab",), "podman's container monitor (a dependency of podman)"),
    HostTool("runc", "runc", ("lab",), "the OCI runtime: crun refuses hybrid cgroups (lab/containers.conf)"),
    HostTool("netavark", "netavark", ("lab",), "podman's network backend (bridge networks, per-VLAN networks)",
             "/usr/lib/podman/netavark"),
    HostTool("aardvark-dns", "aardvark-dns", ("lab",), "name resolution between containers on a podman network",
             "/usr/lib/podman/aardvark-dns"),
    HostTool("iptables", "iptables", ("lab",), "netavark programs the bridge networks' NAT and isolation with it"),
    HostTool("debootstrap", "debootstrap", ("lab", "tests"), "the base image's root file system, and the fresh-root test"),
    HostTool("tar", "tar", ("lab", "make"), "packs the root file system for podman import; the sanity copy"),
    HostTool("ssh", "openssh-client", ("lab", "tests", "ansible"), "Ansible's connection to the nodes; tests log in"),
    HostTool("ssh-keygen", "openssh-client", ("lab",), "the lab's SSH key"),
    HostTool("git", "git", ("make", "ansible"),
             "the sanity copy lists the tracked files; vcluster_manifest fetches and pins external vServices"),
    HostTool("ip", "iproute2", ("tests",), "tests read the host's addresses and routes"),
    HostTool("nsenter", "util-linux", ("tests",), "tests enter a node's network namespace"),
    HostTool("findmnt", "util-linux", ("tests",), "the uenv test: no image a node mounted shows on the host"),
    HostTool("losetup", "mount", ("tests",), "the uenv test: no loop device stays attached to a node's image"),
    HostTool("umount", "mount", ("lab",), "cleans up after a failed debootstrap"),
    HostTool("mount", "mount", ("tests",), "the fresh-root test mounts /proc and /dev in its root"),
    HostTool("chroot", "coreutils", ("tests",), "the fresh-root test runs `make deps` in a clean root"),
    HostTool("update-ca-certificates", "ca-certificates", ("make",), "pip and apt over TLS"),
    HostTool("shellcheck", "shellcheck", ("make",),
             "ansible-test sanity's shellcheck test of the roles' shell scripts (skipped without it)"),
)

#: Packages that provide no executable of their own but a facility the project needs.
FACILITIES: dict[str, str] = {
    "python3-venv": "`python3 -m venv` (ensurepip) for the project's .venv",
}


def packages() -> set[str]:
    """Every Debian package the host needs (what APT_PACKAGES and bindep.txt must list)."""
    return {tool.package for tool in TOOLS} | set(FACILITIES)


def lab_tools() -> tuple[HostTool, ...]:
    """The executables ``vcluster-lab up`` needs."""
    return tuple(tool for tool in TOOLS if "lab" in tool.users)


def missing(tools=None, path: str | None = None) -> list[HostTool]:
    """The tools that do not resolve on ``path`` (default: this process's PATH, which is
    also the PATH podman hands to netavark, and netavark looks for iptables on it)."""
    return [tool for tool in (tools or TOOLS) if not tool.resolves(path)]


def install_hint(tools) -> str:
    """The command that installs what ``tools`` need."""
    pkgs = sorted({tool.package for tool in tools})
    return "apt-get install " + " ".join(pkgs)
