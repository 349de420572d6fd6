"""The control-plane server as a background process of ``vcluster-lab up``.

``up`` starts ``vcluster-lab serve`` detached (own session, stdin closed, output to
``server.log``), records its pid in ``server.pid`` and waits until it answers HTTPS with
the lab's CA. ``down`` stops it by that pid, after checking the pid is still a lab
server (never by process name).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from .containers import podman_env
from .inventory_data import MGMT_ENV, MGMT_NETWORK
from .nodes.base import DriverError

PID_FILE = "server.pid"
LOG_FILE = "server.log"


def server_url(port: int) -> str:
    return f"https://127.0.0.1:{port}"


def ca_path(home: Path) -> Path:
    return home / "tls" / "ca.pem"


def running_pid(home: Path) -> int | None:
    """The pid of this home's server if it is alive and still a vcluster-lab server."""
    try:
        pid = int((home / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if any(b"vcluster" in part for part in cmdline) and str(home).encode() in cmdline:
        return pid
    return None


def write_pid(home: Path, pid: int) -> None:
    fd = os.open(home / PID_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{pid}\n")


def answers(port: int, home: Path, timeout: float = 2.0) -> bool:
    """Whether the server answers HTTPS (verified with the lab CA) on ``port``."""
    if not ca_path(home).is_file():
        return False
    try:
        requests.get(server_url(port) + "/.well-known/jwks.json", timeout=timeout,
                     verify=str(ca_path(home)))
        return True
    except requests.RequestException:
        return False


def _log_tail(home: Path, lines: int = 8) -> str:
    try:
        return " | ".join((home / LOG_FILE).read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no server.log)"


def start(home: Path, port: int, driver: str, prefix: str, timeout: float = 60,
          mgmt_network: str = MGMT_NETWORK) -> int:
    """Start the server in the background unless it runs; return its pid once it answers."""
    pid = running_pid(home)
    if pid:
        if answers(port, home):
            return pid
        raise DriverError(f"a lab server (pid {pid}) runs for {home} but does not answer on "
                          f"port {port}: run 'vcluster-lab down --home {home}' first")
    env = podman_env()
    env.update({"VCLUSTER_LAB_HOME": str(home), "VCLUSTER_LAB_PREFIX": prefix, MGMT_ENV: mgmt_network,
                "PYTHONUNBUFFERED": "1"})
    fd = os.open(home / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vcluster_lab.cli", "serve", "--home", str(home),
             "--port", str(port), "--driver", driver],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=str(home))
    write_pid(home, proc.pid)
    deadline = time.monotonic() + timeout
    while not answers(port, home):
        if proc.poll() is not None:
            raise DriverError(f"the lab server exited at start (status {proc.returncode}): "
                              f"{_log_tail(home)}")
        if time.monotonic() > deadline:
            raise DriverError(f"the lab server does not answer on port {port} after "
                              f"{timeout:.0f} s: {_log_tail(home)}")
        time.sleep(0.2)
    return proc.pid


def stop(home: Path, timeout: float = 20) -> int | None:
    """Stop this home's server (SIGTERM, then SIGKILL); returns the pid it stopped."""
    pid = running_pid(home)
    if pid is None:
        (home / PID_FILE).unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(home) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if running_pid(home) == pid:
        os.kill(pid, signal.SIGKILL)
        while running_pid(home) == pid:
            time.sleep(0.1)
    (home / PID_FILE).unlink(missing_ok=True)
    return pid
