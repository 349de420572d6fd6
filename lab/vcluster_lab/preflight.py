"""``vcluster-lab up``'s preflight: what the host must have, checked before anything is made.

A missing host package otherwise shows up as one podman error per node, after the base
image was built and the control plane started (netavark without iptables: "netavark: No
such file or directory"). The preflight looks for the executables the lab runs
(:mod:`.host_deps`), then makes a throwaway bridge network and runs a throwaway container
on it, which exercises podman, the OCI runtime, conmon, netavark and iptables together
with the lab's own podman settings. It needs no image: the container's root file system is
a temporary directory holding one statically linked program (``ldconfig``, from libc-bin,
which every Debian system has). Whatever it makes is removed before it returns, and is
named and labelled like the lab's other objects, so a killed preflight is cleaned up by
``vcluster-lab down`` and the test suites' reclaim.
"""
from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

from . import host_deps
from .containers import lab_labels, podman
from .nodes.base import DriverError

#: A statically linked program every Debian system has (libc-bin is essential).
PROBE = Path("/usr/sbin/ldconfig")


class PreflightError(DriverError):
    """The host lacks something the lab needs; the message names it and the fix."""


def _first_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def check_tools() -> None:
    """Fail with one line naming every missing executable and the packages that give them."""
    absent = host_deps.missing(host_deps.lab_tools())
    if absent:
        names = ", ".join(f"{tool.name} ({tool.why})" for tool in absent)
        raise PreflightError(f"missing on this host: {names}; fix: {host_deps.install_hint(absent)}")


def check_podman(prefix: str) -> None:
    """Run a throwaway container on a throwaway bridge network; remove both."""
    if not PROBE.is_file():
        raise PreflightError(f"{PROBE} is missing: this does not look like a Debian system "
                             "(fix: apt-get install --reinstall libc-bin)")
    tag = secrets.token_hex(3)
    net, name = f"{prefix}-preflight-{tag}", f"{prefix}-preflight-{tag}"
    root = Path(tempfile.mkdtemp(prefix="vclab-preflight-"))
    try:
        (root / "bin").mkdir()
        shutil.copy2(PROBE, root / "bin" / "probe")
        made = podman("network", "create", *lab_labels(prefix), net, check=False, what="preflight")
        if made.returncode != 0:
            raise PreflightError(f"podman cannot make a bridge network here: {_first_line(made.stderr)}")
        ran = podman("run", "--rm", "--name", name, *lab_labels(prefix), "--network", net,
                     "--ulimit", "host", "--rootfs", str(root), "/bin/probe", "--version",
                     check=False, what="preflight", timeout=120)
        if ran.returncode != 0:
            raise PreflightError(
                f"podman cannot run a container on a bridge network here: {_first_line(ran.stderr)} "
                "(see docs/lab.md, 'Host requirements')")
    finally:
        podman("rm", "-f", "--ignore", name, check=False, what="preflight cleanup")
        podman("network", "rm", "-f", net, check=False, what="preflight cleanup")
        shutil.rmtree(root, ignore_errors=True)


def run(prefix: str) -> None:
    """Everything the podman driver needs from the host, cheapest check first."""
    check_tools()
    check_podman(prefix)
