# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a site's bearer token comes from, and how it is renewed.

OpenCHAMI sites hand out tokens from hydra/tokensmith and the ochami CLI reads them from
``<CLUSTER>_ACCESS_TOKEN``; CSM sites use Keycloak client credentials. Long playbooks
outlive short tokens (Keycloak's example lifetime is 300 s), so fetched tokens are renewed
before they expire and once more when a service answers 401. Tokens are never logged.
"""
from __future__ import annotations

import base64
import json
import os
import random
import time

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, problem_detail, requests
from ansible_collections.hpc.vcluster.plugins.module_utils._site import TOKEN_AUTH_METHOD, token_env_name

# Renew a fetched token this many seconds before it expires (a quarter of its life for short-lived ones:
# a token of 30 s would otherwise be fetched again before every call).
EXPIRY_MARGIN = 30
# A token request answered with one of these (or lost on the way) is sent again: asking for a token
# changes nothing on the site, so this is safe whatever the server did.
TOKEN_RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
TOKEN_RETRIES = 4


def jwt_claims(token):
    """The claims of a JWT, without verifying it (the services do that); {} if it is not a JWT."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8"))
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError, UnicodeError, TypeError):
        return {}


class TokenSource(object):
    """A bearer token and whether it can be renewed."""

    origin = "token"

    def get(self):
        raise NotImplementedError

    def can_refresh(self):
        return False

    def refresh(self):
        return self.get()

    def claims(self):
        token = self.get()
        return jwt_claims(token) if token else {}


class StaticToken(TokenSource):
    """A token given as a value (option or environment variable): used as is, checked for expiry."""

    def __init__(self, value, origin):
        self.value = value.strip()
        self.origin = origin
        if any(c.isspace() for c in self.value):
            raise ApiError("the token from %s holds white space or a line break; it must be one word on one line" % origin)

    def get(self):
        exp = jwt_claims(self.value).get("exp")
        if isinstance(exp, (int, float)) and exp < time.time():
            raise ApiError("the token from %s expired at %s UTC; get a new one" % (
                self.origin, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(exp))))
        return self.value


class FileToken(TokenSource):
    """A token kept in a file that something else renews: re-read when a service says 401."""

    def __init__(self, path):
        self.path = path
        self.origin = "token_file %s" % path
        self._value = None

    def _read(self):
        try:
            with open(self.path) as handle:
                value = handle.read().strip()
        except (IOError, OSError) as exc:
            raise ApiError("cannot read token_file %s: %s" % (self.path, exc.strerror or exc))
        if not value:
            raise ApiError("token_file %s is empty" % self.path)
        return value

    def get(self):
        if self._value is None:
            self._value = self._read()
        return StaticToken(self._value, self.origin).get()

    def can_refresh(self):
        return True

    def refresh(self):
        self._value = self._read()
        return self.get()


class ClientCredentials(TokenSource):
    """OAuth2 client-credentials grant (CSM Keycloak ``admin-client``, OpenCHAMI hydra clients)."""

    def __init__(self, token_url, client_id, client_secret, verify=True, timeout=30, auth_method="post", scope=None,
                 session=None, sleep=time.sleep, retries=TOKEN_RETRIES):
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.verify = verify
        self.timeout = timeout
        self.auth_method = auth_method
        self.scope = scope
        self.origin = "client credentials of %s" % client_id
        self._session = session
        self._token = None
        self._expires = 0.0
        self._margin = EXPIRY_MARGIN
        self._sleep = sleep
        self.retries = retries
        self.fetch_count = 0

    def _fetch(self):
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        basic = None
        if self.auth_method == "basic":
            basic = (self.client_id, self.client_secret)
        else:
            form["client_id"] = self.client_id
            form["client_secret"] = self.client_secret
        session = self._session or requests
        attempt = 0
        while True:
            try:
                self.fetch_count += 1
                response = session.post(self.token_url, data=form, auth=basic, verify=self.verify, timeout=self.timeout,
                                        headers={"Accept": "application/json"})
            except requests.exceptions.SSLError:
                raise ApiError("TOKEN POST %s: TLS verification failed; set ca_path to the site's CA bundle" % self.token_url)
            except requests.exceptions.RequestException as exc:
                if attempt < self.retries and isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
                    self._sleep(_backoff(attempt))
                    attempt += 1
                    continue
                raise ApiError("TOKEN POST %s: cannot reach the token endpoint (%s)" % (self.token_url, type(exc).__name__))
            if response.status_code in TOKEN_RETRY_STATUSES and attempt < self.retries:
                self._sleep(_backoff(attempt))
                attempt += 1
                continue
            break
        if response.status_code != 200:
            raise ApiError("TOKEN POST %s: %d %s: %s; check client_id and client_secret" % (
                self.token_url, response.status_code, response.reason or "", problem_detail(response)),
                status=response.status_code, method="POST", url=self.token_url)
        try:
            body = response.json()
            token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ApiError("TOKEN POST %s: the reply has no access_token" % self.token_url)
        lifetime = body.get("expires_in")
        exp = jwt_claims(token).get("exp")
        now = time.time()
        if isinstance(lifetime, (int, float)):
            self._expires = now + float(lifetime)
        elif isinstance(exp, (int, float)):
            self._expires = float(exp)
        else:
            self._expires = now + 300
        self._margin = min(EXPIRY_MARGIN, max(0.0, self._expires - now) / 4.0)
        self._token = token
        return token

    def get(self):
        if self._token is None or time.time() > self._expires - self._margin:
            return self._fetch()
        return self._token

    def can_refresh(self):
        return True

    def refresh(self):
        return self._fetch()


def _backoff(attempt):
    return min(8.0, 0.5 * (2 ** attempt)) * random.uniform(0.5, 1.0)


def build_token_source(site, options, environ=None):
    """The token source the options describe, in order: token, token_file, <SITE>_ACCESS_TOKEN, client credentials.

    Returns None when nothing is configured (public endpoints still work; protected ones
    answer 401 and the error says what to set).
    """
    environ = os.environ if environ is None else environ
    if options.get("token"):
        return StaticToken(options["token"], "the token option")
    if options.get("token_file"):
        return FileToken(options["token_file"])
    env_name = token_env_name(site.name)
    if environ.get(env_name):
        return StaticToken(environ[env_name], env_name)
    client_id, client_secret = options.get("client_id"), options.get("client_secret")
    if client_id or client_secret:
        if not (client_id and client_secret):
            raise ApiError("client credentials need both client_id and client_secret")
        return ClientCredentials(site.token_url, client_id, client_secret, verify=site.verify, timeout=site.timeout,
                                 auth_method=TOKEN_AUTH_METHOD[site.kind])
    return None
