"""The install recipe on a clean Debian 12 root: every host executable the project uses
must come from a package the Makefile installs.

A green run on a developer's machine hides a missing install step (the machine keeps what
was installed by hand). This test starts from what a new user has: a minimal Debian 12
root (``debootstrap --variant=minbase``, cached) plus the README's prerequisites (git,
make, python3). Inside it (chroot, apt from the host's configured mirror) it runs the
Makefile's own dependency step, ``make deps``, then checks that every executable of
``vcluster_lab.host_deps.TOOLS`` resolves there and that ``python3 -m venv`` works.

It fails when a required package is dropped from the list. Measured once by removing
``iptables`` from ``APT_PACKAGES`` (and from bindep.txt, to keep the unit test in step)::

    E   AssertionError: after `make deps` in a clean Debian 12 root, these do not resolve:
        iptables (from iptables)

Downloads are kept between runs (the root's apt archive directory is a cache directory),
so a second run installs everything for real without fetching it again.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from vcluster_lab import host_deps, images

ROOT = Path(__file__).resolve().parents[2]
#: What the README asks a new user to have (git, make, python3 >= 3.11).
PREREQUISITES = ("git", "make", "python3")


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def clean_root_tarball() -> Path:
    """A debootstrap minbase of Debian 12 from the host's mirror, made once and cached."""
    main, _security, _updates = images.debian_mirrors()
    key = hashlib.sha256(f"fresh-root {images.SUITE} {main}".encode()).hexdigest()[:12]
    tarball = images.cache_dir() / f"fresh-root-{images.SUITE}-{key}.tar"
    with images._locked(f"fresh-root-{key}"):  # pylint: disable=protected-access
        if tarball.is_file():
            return tarball
        work = Path(tempfile.mkdtemp(prefix="fresh-root-", dir=images.cache_dir()))
        try:
            proc = run(["debootstrap", "--variant=minbase", images.SUITE, str(work / "root"), main])
            assert proc.returncode == 0, f"debootstrap failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            partial = work / "root.tar"
            proc = run(["tar", "--numeric-owner", "-C", str(work / "root"), "-cf", str(partial), "."])
            assert proc.returncode == 0, proc.stderr
            os.replace(partial, tarball)
        finally:
            images._umount_below(work)  # pylint: disable=protected-access
            shutil.rmtree(work, ignore_errors=True)
    return tarball


@pytest.fixture(name="fresh_root")
def fixture_fresh_root(tmp_path):
    """A clean root in ``tmp_path`` with /proc, /dev and the apt archive cache mounted."""
    assert os.geteuid() == 0, "the fresh-root test needs root (chroot, mount): run make test as root"
    root = tmp_path / "root"
    root.mkdir()
    proc = run(["tar", "--numeric-owner", "-C", str(root), "-xf", str(clean_root_tarball())])
    assert proc.returncode == 0, proc.stderr
    main, security, updates = images.debian_mirrors()
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        images._sources_file(main, security, updates))  # pylint: disable=protected-access
    shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
    # No daemon may start inside the chroot (invoke-rc.d asks policy-rc.d).
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    archives = images.cache_dir() / "fresh-root-apt-archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    mounts = [(["-t", "proc", "proc"], root / "proc"), (["--bind", "/dev"], root / "dev"),
              (["--bind", str(archives)], root / "var/cache/apt/archives")]
    try:
        for args, point in mounts:
            proc = run(["mount", *args, str(point)])
            assert proc.returncode == 0, f"mount {point}: {proc.stderr}"
        yield root
    finally:
        images._umount_below(root)  # pylint: disable=protected-access


def chroot(root: Path, command: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    return run(["chroot", str(root), "/bin/sh", "-c", command], env=env, timeout=timeout)


def test_make_deps_gives_every_host_executable(fresh_root):
    pre = chroot(fresh_root, "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
                 + " ".join(PREREQUISITES))
    assert pre.returncode == 0, f"installing the prerequisites failed: {pre.stdout[-2000:]}{pre.stderr[-2000:]}"
    before = {tool.name for tool in host_deps.TOOLS
              if chroot(fresh_root, f"command -v {tool.name} || test -x '{tool.location or '/-'}'").returncode == 0}
    assert "iptables" not in before and "podman" not in before, "the root is not clean"

    src = fresh_root / "root/src"
    src.mkdir(parents=True)
    shutil.copy2(ROOT / "Makefile", src / "Makefile")
    deps = chroot(fresh_root, "make -C /root/src deps")
    assert deps.returncode == 0, f"make deps failed in a clean root: {deps.stdout[-3000:]}{deps.stderr[-3000:]}"

    absent = [f"{tool.name} (from {tool.package})" for tool in host_deps.TOOLS
              if chroot(fresh_root, f"command -v {tool.name} || test -x '{tool.location or '/-'}'").returncode != 0]
    assert not absent, ("after `make deps` in a clean Debian 12 root, these do not resolve: "
                        + ", ".join(absent))
    venv = chroot(fresh_root, "python3 -m venv /tmp/venv && /tmp/venv/bin/python -c 'import ensurepip'")
    assert venv.returncode == 0, f"python3 -m venv fails after make deps: {venv.stderr[-1000:]}"
