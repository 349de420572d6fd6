"""Fixtures for the lab tests: the real control-plane server on a loopback port.

``LabServer`` runs ``python -m vcluster_lab.server`` as a child process (so a test can
``kill -9`` it), on a free port, TLS on by default, in a private home. Reuse it from any
test module:

* ``lab_server_factory(driver="records", tls=True, faults=None, env=None, home=None, host="127.0.0.1")``
  (function scope, also named ``lab_server``) starts servers and stops them after the
  test; ``lab_server_module`` is the same factory with module scope;
* ``lab`` (module scope) is one records-driver server shared by a module's tests;
* ``LabServer(...)`` can also be used directly as a context manager (e.g. in a
  module-scoped fixture with ``driver="podman"`` and the podman environment).

Helpers on a server: ``url``, ``verify`` (the CA path, or False for plain HTTP),
``credentials``, ``token(face)``, ``session(face)``, ``admin(method, path, json=...)``,
``kill9()``, ``stop()``, ``restart()``, ``wait_transition(session, tid, face)``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

SPECS = Path(__file__).resolve().parents[2] / "lab" / "specs"
PCS_PREFIX = {"openchami": "/power-control/v1", "csm": "/apis/power-control/v1"}
SMD_PREFIX = {"openchami": "/hsm/v2", "csm": "/apis/smd/hsm/v2"}
BSS_PREFIX = {"openchami": "/boot/v1", "csm": "/apis/bss/boot/v1"}


class LabServer:
    """One control-plane server process over one lab home."""

    def __init__(self, home: Path, driver: str = "records", tls: bool = True, faults: dict | None = None,
                 env: dict | None = None, host: str = "127.0.0.1"):
        self.home, self.driver, self.tls, self.host = Path(home), driver, tls, host
        self.faults = faults or {}
        self.env = dict(os.environ, **(env or {}))
        self.proc: subprocess.Popen | None = None
        self.port = 0

    # ------------------------------------------------------------------ process
    def start(self, timeout: float = 60) -> "LabServer":
        cmd = [sys.executable, "-m", "vcluster_lab.server", "--home", str(self.home), "--host", self.host, "--port", "0",
               "--driver", self.driver, "--log-level", "INFO"]
        if not self.tls:
            cmd.append("--no-tls")
        for key, value in self.faults.items():
            cmd += ["--fault", f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"]
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "server.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=self.env, text=True)
        log.close()
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("LISTENING"):
                self.port = int(line.split()[1])
                return self
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"lab server did not start: {line!r}\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.home / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server.log)"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def kill9(self) -> None:
        """Kill the server without any chance to clean up (SIGKILL)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()

    def restart(self) -> "LabServer":
        self.stop()
        return self.start()

    def __enter__(self) -> "LabServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP
    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def verify(self) -> str | bool:
        return str(self.home / "tls" / "ca.pem") if self.tls else False

    @property
    def credentials(self) -> dict:
        return json.loads((self.home / "credentials.json").read_text())

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, verify=self.verify, timeout=60, **kw)

    def request(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, self.url + path, verify=self.verify, timeout=60, **kw)

    def admin(self, method: str, path: str, **kw) -> requests.Response:
        resp = self.request(method, "/lab/v1" + path, **kw)
        return resp

    def token(self, face: str = "openchami", user: str | None = None) -> str:
        creds = self.credentials
        if face == "openchami":
            c = creds["openchami"]
            resp = self.request("POST", "/oauth2/token", auth=(c["client_id"], c["client_secret"]),
                                data={"grant_type": "client_credentials"})
        elif user:
            resp = self.request("POST", "/keycloak/realms/shasta/protocol/openid-connect/token",
                                data={"grant_type": "password", "client_id": "shasta", "username": user,
                                      "password": creds["users"][user]["password"]})
        else:
            c = creds["csm"]
            resp = self.request("POST", "/keycloak/realms/shasta/protocol/openid-connect/token",
                                data={"grant_type": "client_credentials", "client_id": c["client_id"],
                                      "client_secret": c["client_secret"]})
        resp.raise_for_status()
        return resp.json()["access_token"]

    def session(self, face: str = "openchami", token: bool = True) -> "ApiSession":
        return ApiSession(self, self.token(face) if token else None)

    def wait_transition(self, tid: str, face: str = "openchami", timeout: float = 60) -> dict:
        s = self.session(face)
        deadline = time.monotonic() + timeout
        while True:
            body = s.get(f"{PCS_PREFIX[face]}/transitions/{tid}").json()
            if body["transitionStatus"] in ("completed", "aborted"):
                return body
            assert time.monotonic() < deadline, f"transition {tid} still {body}"
            time.sleep(0.05)


class ApiSession(requests.Session):
    """A session on the lab's base URL with its CA and (optionally) a bearer token."""

    def __init__(self, server: LabServer, token: str | None):
        super().__init__()
        self.server = server
        self.verify = server.verify
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, url, *args, **kwargs):  # noqa: D401 - requests' signature
        if url.startswith("/"):
            url = self.server.url + url
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("verify", self.verify)  # REQUESTS_CA_BUNDLE would override session.verify
        return super().request(method, url, *args, **kwargs)


def _factory(tmp_path_factory):
    servers: list[LabServer] = []

    def make(driver: str = "records", tls: bool = True, faults: dict | None = None, env: dict | None = None,
             home: Path | None = None, host: str = "127.0.0.1") -> LabServer:
        server = LabServer(home or tmp_path_factory.mktemp("labhome"), driver, tls, faults, env, host)
        servers.append(server)
        return server.start()
    return make, servers


@pytest.fixture
def lab_server_factory(tmp_path_factory):
    """Start lab servers (records driver unless told otherwise); all stopped after the test."""
    make, servers = _factory(tmp_path_factory)
    yield make
    for server in servers:
        server.stop()


lab_server = lab_server_factory  # the same factory under a shorter name


@pytest.fixture(scope="module")
def lab_server_module(tmp_path_factory):
    """The factory with module scope: servers live until the module's last test (e.g. podman nodes)."""
    make, servers = _factory(tmp_path_factory)
    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One records-driver server, TLS on, shared by the tests of a module."""
    with LabServer(tmp_path_factory.mktemp("labhome")) as server:
        yield server


def make_nodes(server: LabServer, compute: int, service: int = 0, power_on: bool = False) -> dict:
    resp = server.admin("POST", "/nodes", json={"compute": compute, "service": service, "power_on": power_on,
                                                "wait": power_on})
    assert resp.status_code == 200, resp.text
    return resp.json()
