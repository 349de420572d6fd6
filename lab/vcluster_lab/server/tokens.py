"""Token endpoints of both faces.

OpenCHAMI: ``POST /oauth2/token`` (hydra: client_credentials, client authenticated by
HTTP Basic or form fields), ``GET /token`` (opaal: a client-credentials token for the
caller, unauthenticated as in release deployments), ``GET /.well-known/jwks.json`` and
``/keys`` (the JWKS services verify against).

CSM: Keycloak realm ``shasta`` under ``/keycloak/realms/shasta/protocol/openid-connect``:
``token`` with client_credentials (``admin-client`` + secret) or password
(``client_id=shasta`` + lab user) or refresh_token, and ``certs``.
"""
from __future__ import annotations

import base64
import time
import uuid
from urllib.parse import unquote

from flask import Blueprint, request

from ..tokens import KEYCLOAK_REALM_PATH
from .common import lab, reply

bp = Blueprint("tokens", __name__)
DEFAULT_REALM_ROLES = ["default-roles-shasta", "offline_access", "uma_authorization"]
REFRESH_LIFETIME = 1800


def _oauth_error(status: int, error: str, description: str):
    return reply({"error": error, "error_description": description}, status)


def _client_auth() -> tuple[str, str]:
    """(client_id, secret) from HTTP Basic (URL-encoded per RFC 6749) or the form."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            raw = base64.b64decode(header[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return "", ""
        cid, _, secret = raw.partition(":")
        return unquote(cid), unquote(secret)
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _base() -> str:
    return request.host_url.rstrip("/")


# ---------------------------------------------------------------------------- OpenCHAMI
@bp.post("/oauth2/token")
def hydra_token():
    if request.form.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type",
                            "The authorization server does not support this authorization grant type.")
    cid, secret = _client_auth()
    if not lab().creds.check_client("openchami", cid, secret):
        return _oauth_error(401, "invalid_client", "Client authentication failed (e.g., unknown client, no client "
                                                   "authentication included, or unsupported authentication method).")
    token, life, scope = lab().tokens.issue_openchami(_base(), cid, request.form.get("scope") or None)
    return reply({"access_token": token, "expires_in": life, "scope": scope, "token_type": "bearer"})


@bp.get("/token")
def opaal_token():
    cid, _ = lab().creds.client_secret("openchami")
    token, life, scope = lab().tokens.issue_openchami(_base(), cid)
    return reply({"access_token": token, "expires_in": life, "scope": scope, "token_type": "bearer"})


@bp.get("/.well-known/jwks.json")
@bp.get("/keys")
def jwks():
    return reply(lab().tokens.jwks("openchami"))


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    base = _base()
    return reply({"issuer": base + "/", "token_endpoint": base + "/oauth2/token",
                  "jwks_uri": base + "/.well-known/jwks.json", "grant_types_supported": ["client_credentials"],
                  "id_token_signing_alg_values_supported": ["RS256"]})


# ---------------------------------------------------------------------------- Keycloak
def _keycloak_reply(sub: str, azp: str, username: str, realm_roles: list[str], client_roles: list[str],
                    refresh: bool):
    base = _base()
    token, life = lab().tokens.issue_keycloak(base, sub, azp, username, realm_roles, client_roles)
    out = {"access_token": token, "expires_in": life, "refresh_expires_in": 0, "token_type": "Bearer",
           "not-before-policy": 0, "scope": "profile email"}
    if refresh:
        now = int(time.time())
        session = str(uuid.uuid4())
        out["refresh_expires_in"] = REFRESH_LIFETIME
        out["refresh_token"] = lab().tokens.issuers["keycloak"].sign({
            "iss": base + KEYCLOAK_REALM_PATH, "sub": sub, "aud": base + KEYCLOAK_REALM_PATH, "typ": "Refresh",
            "azp": azp, "preferred_username": username, "exp": now + REFRESH_LIFETIME, "iat": now,
            "jti": str(uuid.uuid4()), "session_state": session})
        out["session_state"] = session
    return reply(out)


def _user_reply(username: str, refresh: bool = True):
    user = lab().creds.user(username) or {}
    roles = list(user.get("roles", [])) + DEFAULT_REALM_ROLES
    sub = str(uuid.uuid5(uuid.NAMESPACE_URL, "vclab-user:" + username))
    return _keycloak_reply(sub, "shasta", username, roles, list(user.get("client_roles", ["admin"])), refresh)


@bp.post("/keycloak/realms/shasta/protocol/openid-connect/token")
def keycloak_token():
    grant = request.form.get("grant_type", "")
    if grant == "client_credentials":
        cid, secret = _client_auth()
        if not lab().creds.check_client("csm", cid, secret):
            return _oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        sub = str(uuid.uuid5(uuid.NAMESPACE_URL, "vclab-client:" + cid))
        return _keycloak_reply(sub, cid, f"service-account-{cid}", DEFAULT_REALM_ROLES, ["admin"], False)
    if grant == "password":
        if request.form.get("client_id") != "shasta":
            return _oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
        username = request.form.get("username", "")
        if lab().creds.check_user(username, request.form.get("password", "")) is None:
            return _oauth_error(401, "invalid_grant", "Invalid user credentials")
        return _user_reply(username)
    if grant == "refresh_token":
        try:
            kind, claims = lab().tokens.verify(request.form.get("refresh_token", ""), ("keycloak",))
        except Exception:  # any verification failure is Keycloak's invalid_grant
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        if claims.get("typ") != "Refresh" or not lab().creds.user(claims.get("preferred_username", "")):
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        return _user_reply(claims["preferred_username"])
    return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")


@bp.get("/keycloak/realms/shasta/protocol/openid-connect/certs")
def keycloak_certs():
    return reply(lab().tokens.jwks("keycloak"))


@bp.get("/keycloak/realms/shasta/.well-known/openid-configuration")
def keycloak_configuration():
    issuer = _base() + KEYCLOAK_REALM_PATH
    return reply({"issuer": issuer, "token_endpoint": issuer + "/protocol/openid-connect/token",
                  "jwks_uri": issuer + "/protocol/openid-connect/certs",
                  "grant_types_supported": ["client_credentials", "password", "refresh_token"]})

