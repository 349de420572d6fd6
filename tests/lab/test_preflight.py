"""``vcluster-lab up``'s preflight, through the real command line.

A host without iptables is made by a PATH that holds every executable of the host's PATH
but ``iptables*`` (what `apt-get remove iptables` leaves, as far as any program run by the
lab can tell). ``up`` must stop at once with one line naming iptables and the command that
installs it, and leave nothing: no container, network or image with its prefix, no lab
state, no server. The second test shows the preflight's throwaway container and network
really run (and are removed) on a complete host.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cli_helpers import CLI, free_port
from podman_helpers import leftovers, new_prefix, podman

from vcluster_lab import preflight
from vcluster_lab.nodes.podman import remove_lab


def path_without(tmp_path: Path, hidden: str) -> str:
    """A PATH of one directory: links to everything on the current PATH but ``hidden*``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep) + ["/usr/local/sbin", "/usr/sbin", "/sbin"]:
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = bindir / entry.name
            if entry.name.startswith(hidden) or link.exists() or link.is_symlink():
                continue
            link.symlink_to(entry.path)
    return str(bindir)


def test_up_without_iptables_names_it_and_leaves_nothing(tmp_path):
    prefix, home = new_prefix(), tmp_path / "home"
    env = dict(os.environ, PATH=path_without(tmp_path, "iptables"), VCLUSTER_LAB_HOME=str(home),
               VCLUSTER_LAB_PREFIX=prefix)
    try:
        proc = subprocess.run([CLI, "up", "--nodes", "2", "--port", str(free_port())], capture_output=True,
                              text=True, env=env, timeout=120, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "iptables" in lines[0] and "apt-get install iptables" in lines[0], lines[0]
        assert "control plane" not in proc.stdout and "debootstrap" not in proc.stdout, proc.stdout
        assert not any(leftovers(prefix).values()), leftovers(prefix)
        assert not (home / "lab.json").exists() and not (home / "server.pid").exists()
        assert not list(home.glob("ssh/*")), "the preflight made the lab's SSH key"
    finally:
        remove_lab(prefix)


def test_preflight_runs_a_container_on_a_bridge_and_removes_both():
    prefix = new_prefix()
    before = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    try:
        preflight.run(prefix)
        assert not any(leftovers(prefix).values()), leftovers(prefix)
        after = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
        assert sorted(after) == sorted(before)
    finally:
        remove_lab(prefix)


def test_a_failing_container_is_reported_in_one_line(tmp_path, monkeypatch):
    """A podman that cannot start the container (here: the probe program is not executable
    in the root file system) is reported as one line, and the network is still removed."""
    prefix = new_prefix()
    broken = tmp_path / "probe"
    broken.write_text("not a program\n")
    monkeypatch.setattr(preflight, "PROBE", broken)
    try:
        with pytest.raises(preflight.PreflightError) as caught:
            preflight.run(prefix)
        text = str(caught.value)
        assert text.startswith("podman cannot run a container on a bridge network here:"), text
        assert "\n" not in text
        assert not any(leftovers(prefix).values()), leftovers(prefix)
    finally:
        remove_lab(prefix)
