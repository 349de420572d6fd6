"""Running the real ``vcluster-lab`` command for the CLI tests, in a private home and prefix."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "vcluster-lab") if (VENV_BIN / "vcluster-lab").exists() else shutil.which("vcluster-lab")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """One lab instance driven through the command line, as a user would."""

    def __init__(self, home: Path, prefix: str, port: int):
        self.home, self.prefix, self.port = home, prefix, port
        self.env = dict(os.environ, VCLUSTER_LAB_HOME=str(home), VCLUSTER_LAB_PREFIX=prefix)
        self.url = f"https://127.0.0.1:{port}"

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([CLI, *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, check=False)
        if check:
            assert proc.returncode == 0, f"vcluster-lab {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    def env_json(self, face: str = "openchami") -> dict:
        return json.loads(self.run("env", "--face", face, "--format", "json").stdout)

    def session(self, face: str = "openchami") -> requests.Session:
        """An HTTPS session with a token of ``face``, got the way clients get one."""
        env = self.env_json(face)
        s = requests.Session()
        s.verify = env["VCLUSTER_CA_PATH"]
        s.trust_env = False  # else $REQUESTS_CA_BUNDLE replaces the lab CA
        if face == "openchami":
            token = env["LAB_ACCESS_TOKEN"]
        else:
            resp = s.post(self.url + "/keycloak/realms/shasta/protocol/openid-connect/token",
                          data={"grant_type": "client_credentials"},
                          auth=(env["VCLUSTER_CLIENT_ID"], env["VCLUSTER_CLIENT_SECRET"]))
            resp.raise_for_status()
            token = resp.json()["access_token"]
        s.headers["Authorization"] = f"Bearer {token}"
        return s


def wait_transition(session: requests.Session, url: str, tid: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = session.get(f"{url}/power-control/v1/transitions/{tid}").json()
        if body.get("transitionStatus") in ("completed", "aborted"):
            return body
        assert time.monotonic() < deadline, f"transition {tid} still {body}"
        time.sleep(0.3)
