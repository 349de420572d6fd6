"""How the command line talks to a running lab: HTTPS with the lab's CA and real tokens.

The CLI uses the same doors as any client of the site: a client-credentials token from
the token endpoint (OpenCHAMI face) for the admin API and for ``env``, the client id and
secret for the CSM face. Secrets are read from ``credentials.json`` and never printed
here.
"""
from __future__ import annotations

import json
from pathlib import Path

import requests

from .daemon import ca_path, server_url
from .nodes.base import DriverError


class LabError(DriverError):
    """The lab's server refused or failed a request; the message carries its reply."""


class LabClient:
    def __init__(self, home: Path, port: int, timeout: float = 60):
        self.home = Path(home)
        self.url = server_url(port)
        self.timeout = timeout
        self.session = requests.Session()
        # Passed on every request: a session-wide verify loses to $REQUESTS_CA_BUNDLE.
        self.verify = str(ca_path(self.home))
        self._token: str | None = None

    def credentials(self, face: str) -> tuple[str, str]:
        """(client id, secret) of ``face`` (openchami or csm) from credentials.json."""
        path = self.home / "credentials.json"
        try:
            entry = json.loads(path.read_text())[face]
            return entry["client_id"], entry["client_secret"]
        except (OSError, ValueError, KeyError) as exc:
            raise LabError(f"{path}: no {face} client credentials ({exc}); is the lab up?") from exc

    def token(self) -> str:
        """An OpenCHAMI-face access token (client credentials at ``/oauth2/token``)."""
        if self._token is None:
            cid, secret = self.credentials("openchami")
            try:
                resp = self.session.post(self.url + "/oauth2/token", timeout=self.timeout,
                                         verify=self.verify,
                                         data={"grant_type": "client_credentials"},
                                         auth=(cid, secret))
            except requests.RequestException as exc:
                raise LabError(f"token endpoint {self.url}/oauth2/token: {exc}") from exc
            if resp.status_code != 200:
                raise LabError(f"token endpoint {self.url}/oauth2/token: HTTP "
                               f"{resp.status_code} {resp.text.strip()[:200]}")
            self._token = resp.json()["access_token"]
        return self._token

    def call(self, method: str, path: str, body=None, ok=(200, 201, 202, 204),
             timeout: float | None = None):
        """A request; returns the decoded JSON reply (or None).

        The admin API (``/lab/v1``, loopback only) takes no token, so it still answers
        when faults make the token endpoint fail; every other path gets a bearer token.
        """
        headers = {} if path.startswith("/lab/v1/") else {"Authorization": f"Bearer {self.token()}"}
        try:
            resp = self.session.request(method, self.url + path, json=body, headers=headers,
                                        verify=self.verify,
                                        timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            raise LabError(f"{method} {path}: {exc}") from exc
        if resp.status_code not in ok:
            detail = resp.text.strip()
            try:
                data = resp.json()
                detail = data.get("detail") or data.get("error") or data.get("message") or detail
            except ValueError:
                pass
            raise LabError(f"{method} {path}: HTTP {resp.status_code}: {str(detail)[:400]}")
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text
