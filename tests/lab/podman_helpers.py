"""Shared by the podman lab tests: a private lab prefix per module, probes, cleanup.

Each test module runs its own lab instance (``VCLUSTER_LAB_PREFIX``-style prefix
``vclabt<random>``) so it never touches a developer's lab, and removes everything that
prefix made when it ends, then checks that nothing with its labels is left.

The base image ``localhost/vclab-base:bookworm`` is shared by every lab on the machine
(other labs' nodes may run it while a test ends), so tests make it, when it is missing,
as the default lab would (prefix ``vclab``) and leave it, like the root file system cache.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess

from vcluster_lab import images
from vcluster_lab.containers import DEFAULT_PREFIX, podman_env
from vcluster_lab.nodes.podman import remove_lab

os.environ["CONTAINERS_CONF"] = podman_env()["CONTAINERS_CONF"]


def shared_base():
    """The shared base image (see the module docstring)."""
    return images.ensure_base(DEFAULT_PREFIX)


def new_prefix() -> str:
    return "vclabt" + secrets.token_hex(3)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check,
                          env=podman_env())


def leftovers(prefix: str) -> dict[str, list[str]]:
    """Containers, networks and images that still carry lab ``prefix``'s labels."""
    def rows(*args):
        out = podman(*args, "--format", "json", "--filter",
                     f"label=io.vcluster.lab.prefix={prefix}").stdout
        return json.loads(out or "[]") or []
    containers = [r["Names"][0] for r in rows("ps", "-a")
                  if (r.get("Labels") or {}).get("io.vcluster.lab.node") == prefix]
    containers += [r["Names"][0] for r in json.loads(podman(
        "ps", "-a", "--format", "json", "--filter", f"name=^{prefix}-").stdout or "[]") or []]
    networks = [r["name"] for r in rows("network", "ls")]
    image_rows = [r for r in rows("images")
                  if (r.get("Labels") or {}).get("io.vcluster.lab.prefix") == prefix]
    # The shared base image (module docstring) carries the prefix of whichever lab imported it
    # last: labs of another checkout (another base key) re-import it under a test's feet, and
    # `down` keeps it while others' containers or the cached site images stand on it.
    return {"containers": sorted(set(containers)), "networks": networks,
            "images": [n for r in image_rows for n in (r.get("Names") or [r["Id"]]) if n != images.BASE_REF]}


def teardown(prefix: str) -> None:
    """Remove the prefix's lab; fail if anything with its labels survives."""
    remove_lab(prefix)
    left = leftovers(prefix)
    assert not any(left.values()), f"lab {prefix} left behind: {left}"


def tcp_open(container: str, ip: str, port: int = 22, timeout: int = 1) -> bool:
    """From inside ``container``: does ``ip``:``port`` accept a TCP connection?"""
    proc = podman("exec", container, "timeout", str(timeout), "bash", "-c",
                  f"exec 3<>/dev/tcp/{ip}/{port}", check=False)
    return proc.returncode == 0


def inspect(container: str, fmt: str) -> str:
    return podman("inspect", "--format", fmt, container).stdout.strip()
