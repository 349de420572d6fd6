"""The lab's SSH key and the checks that a node answers SSH.

The lab key stands in for what cloud-init would put on a real node: its public half is
mounted as root's authorized_keys in every node container, its private half (0600, never
printed) is what Ansible and the tests log in with.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .nodes.base import DriverError

KEY_NAME = "id_ed25519"
#: Lab nodes are recreated with new host keys all the time: never remember them.
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
               "-o", "ConnectTimeout=5")


def key_path(home: str | Path) -> Path:
    return Path(home) / "ssh" / KEY_NAME


def ensure_key(home: str | Path) -> Path:
    """The lab's private key, generated with ssh-keygen on first use (0600 in a 0700 dir)."""
    path = key_path(home)
    if path.is_file() and path.with_suffix(".pub").is_file():
        return path
    if shutil.which("ssh-keygen") is None:
        raise DriverError("lab SSH key: ssh-keygen is not installed (apt-get install openssh-client)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path.is_file() and path.with_suffix(".pub").is_file()):
            for stale in (path, path.with_suffix(".pub")):
                stale.unlink(missing_ok=True)
            proc = subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vcluster-lab",
                 "-f", str(path)], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise DriverError(f"lab SSH key {path}: ssh-keygen failed: {proc.stderr.strip()}")
    os.chmod(path, 0o600)
    return path


def ssh_argv(key: str | Path, ip: str, *command: str) -> list[str]:
    """An ``ssh`` command line logging in as root on ``ip`` with the lab key."""
    return ["ssh", "-i", str(key), *SSH_OPTIONS, f"root@{ip}", *command]


def sshd_answers(ip: str, timeout: float = 2.0) -> bool:
    """Whether an SSH server on ``ip``:22 sends its banner."""
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_for_login(key: str | Path, ips: dict[str, str], timeout: float = 180) -> None:
    """Wait until every node (name -> ip) accepts a root login with the lab key."""
    deadline = time.monotonic() + timeout
    pending = dict(ips)
    last: dict[str, str] = {}
    while pending:
        for name, ip in list(pending.items()):
            if not sshd_answers(ip):
                last[name] = "sshd does not answer on port 22"
                continue
            proc = subprocess.run(ssh_argv(key, ip, "true"), capture_output=True, text=True,
                                  timeout=30, check=False)
            if proc.returncode == 0:
                del pending[name]
            else:
                last[name] = proc.stderr.strip() or f"ssh exit {proc.returncode}"
        if not pending:
            return
        if time.monotonic() > deadline:
            detail = "; ".join(f"{n} ({ips[n]}): {last.get(n, '?')}" for n in sorted(pending))
            raise DriverError(f"no SSH login after {timeout:.0f} s on {detail}")
        time.sleep(0.5)
