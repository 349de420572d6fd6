"""What the benchmarks share: a records-only lab of their own, and how they run Ansible against it.

A records-only lab (``vcluster-lab up --records``) starts no container and creates no podman network, so it
does not touch the NMN range and needs no ``vcluster_lab.nmn_claim`` lock; it only needs its own home and
port. Each benchmark gets a temporary home, a free port and a private prefix, and stops the server by its pid.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# requests (and the lab's own client) let these replace a session's CA bundle; the lab's CA must win.
CA_OVERRIDES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so a benchmark's ``finally`` still stops its lab server."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ansible_env(**extra: str) -> dict:
    """The environment for ansible-* commands on this checkout (collections, quiet deprecations)."""
    env = {k: v for k, v in os.environ.items() if k not in CA_OVERRIDES}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_DEPRECATION_WARNINGS="0",
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    env.update(extra)
    return env


class Lab:
    """A records-only lab of our own: temporary home, free port, private prefix; stopped by its pid."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in CA_OVERRIDES}
        self.env["VCLUSTER_LAB_PREFIX"] = "vcbench%d" % os.getpid()

    @property
    def url(self) -> str:
        return "https://127.0.0.1:%d" % self.port

    @property
    def ca_path(self) -> Path:
        return self.home / "tls" / "ca.pem"

    def cli(self, *args: str) -> str:
        cmd = [sys.executable, "-m", "vcluster_lab.cli", *args, "--home", str(self.home)]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode:
            raise SystemExit("vcluster-lab %s failed: %s" % (args[0], (done.stderr or done.stdout).strip()[-800:]))
        return done.stdout

    def start(self, nodes: int, groups: int) -> str:
        self.cli("up", "--records", "--nodes", "0", "--port", str(self.port))
        return self.cli("seed", "--nodes", str(nodes), "--groups", str(groups)).strip()

    def client_env(self, face: str) -> dict:
        return json.loads(self.cli("env", "--face", face, "--format", "json"))

    def credentials(self) -> dict:
        return json.loads((self.home / "credentials.json").read_text())

    def stop(self) -> None:
        pid_file = self.home / "server.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
            for _attempt in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
