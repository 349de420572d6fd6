"""Credentials, signing keys and bearer tokens for both faces of the lab.

Two issuers, as on real sites, each with its own RSA key (so a token from one face is
rejected by the other, like a Keycloak token at an OpenCHAMI SMD would be):

* ``openchami``: the hydra/opaal/tokensmith stand-in (``POST /oauth2/token``, ``GET /token``,
  JWKS at ``/.well-known/jwks.json``). OpenCHAMI services only check the signature and
  the presence of ``sub``/``iss``/``aud`` (research-openchami §2.1).
* ``keycloak``: the CSM realm ``shasta`` (token endpoint under ``/keycloak``, JWKS at
  ``.../protocol/openid-connect/certs``). The CSM gateway (cray-opa) wants ``aud`` to hold
  ``shasta`` and a client role in ``resource_access.shasta.roles``; Manta-style RBAC reads
  the realm roles (``realm_access.roles``) as the HSM group labels a user may manage.

Secrets are generated on first start into ``$VCLUSTER_LAB_HOME/credentials.json`` (0600)
and keys into ``$VCLUSTER_LAB_HOME/jwt/`` (0600). Nothing here logs a secret or a token.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

OPENCHAMI_CLIENT_ID = "vclab-client"
CSM_CLIENT_ID = "admin-client"
DEFAULT_SCOPE = ("openid smd.read smd.write bss.read bss.write pcs.read pcs.write "
                 "cloud-init.read cloud-init.write")
KEYCLOAK_REALM_PATH = "/keycloak/realms/shasta"
DEFAULT_LIFETIME = 3600


class TokenError(Exception):
    """A token was refused; ``reason`` is one of missing, expired, invalid, claims, issuer."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def default_credentials() -> dict:
    def pw() -> str:
        return secrets.token_urlsafe(18)
    return {
        "openchami": {"client_id": OPENCHAMI_CLIENT_ID, "client_secret": pw()},
        "csm": {"client_id": CSM_CLIENT_ID, "client_secret": pw()},
        # Keycloak users for the password grant (client_id=shasta). Realm roles are the
        # HSM group labels the user may manage (Manta's convention); pa_admin = everything.
        "users": {
            "vcadmin": {"password": pw(), "roles": ["pa_admin"]},
            "alice": {"password": pw(), "roles": ["vc_blue"]},
            "bob": {"password": pw(), "roles": ["vc_red"]},
        },
        "ufm": {"username": "admin", "password": pw()},
        # the static key pair of the site's S3 store (MinIO's on OpenCHAMI)
        "s3": {"access_key": "VCLAB" + secrets.token_hex(6).upper(), "secret_key": pw()},
    }


class Credentials:
    """``credentials.json``: read once, rewritten (0600) when a lab user is added."""

    def __init__(self, home: Path):
        self.path = Path(home) / "credentials.json"
        self._lock = threading.Lock()
        if self.path.exists():
            self.data = json.loads(self.path.read_text())
        else:
            self.data = default_credentials()
            self._save()

    def _save(self) -> None:
        _write_private(self.path, (json.dumps(self.data, indent=2) + "\n").encode())

    def client_secret(self, face: str) -> tuple[str, str]:
        entry = self.data[face]
        return entry["client_id"], entry["client_secret"]

    def check_client(self, face: str, client_id: str, secret: str) -> bool:
        cid, sec = self.client_secret(face)
        return secrets.compare_digest(cid, client_id or "") and secrets.compare_digest(sec, secret or "")

    def check_user(self, username: str, password: str) -> list[str] | None:
        user = self.data.get("users", {}).get(username or "")
        if user and secrets.compare_digest(user["password"], password or ""):
            return list(user.get("roles", []))
        return None

    def set_user(self, username: str, roles: list[str], password: str | None = None,
                 client_roles: list[str] | None = None) -> dict:
        with self._lock:
            user = {"password": password or secrets.token_urlsafe(18), "roles": list(roles)}
            if client_roles is not None:
                user["client_roles"] = list(client_roles)
            self.data.setdefault("users", {})[username] = user
            self._save()
            return dict(user)

    def user(self, username: str) -> dict | None:
        return self.data.get("users", {}).get(username)

    def s3(self) -> dict:
        """The S3 key pair; made (and saved) for a lab whose credentials predate it."""
        with self._lock:
            if "s3" not in self.data and self.path.exists():  # `vcluster-lab env` may have made it
                self.data["s3"] = json.loads(self.path.read_text()).get("s3")
            if not self.data.get("s3"):
                self.data["s3"] = default_credentials()["s3"]
                self._save()
            return self.data["s3"]

    def check_ufm(self, username: str, password: str) -> bool:
        ufm = self.data["ufm"]
        return secrets.compare_digest(ufm["username"], username or "") and \
            secrets.compare_digest(ufm["password"], password or "")


class _Issuer:
    def __init__(self, key_path: Path):
        if key_path.exists():
            self.key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write_private(key_path, self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")
        self.public = self.key.public_key()

    def jwk(self) -> dict:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.public, as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return jwk

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})


class Tokens:
    """Issues and verifies the lab's JWTs. ``lifetime`` is read on every issue (faults change it)."""

    def __init__(self, home: Path, lifetime: Callable[[], int] = lambda: DEFAULT_LIFETIME):
        jwt_dir = Path(home) / "jwt"
        self.issuers = {"openchami": _Issuer(jwt_dir / "openchami.pem"),
                        "keycloak": _Issuer(jwt_dir / "keycloak.pem")}
        self.lifetime = lifetime

    def jwks(self, kind: str) -> dict:
        return {"keys": [self.issuers[kind].jwk()]}

    def _base_claims(self, iss: str, sub: str, aud: list[str], scope: str, roles: list[str]) -> tuple[dict, int]:
        now = int(time.time())
        life = int(self.lifetime())
        return {"iss": iss, "sub": sub, "aud": aud, "exp": now + life, "iat": now, "nbf": now,
                "jti": str(uuid.uuid4()), "scope": scope, "roles": roles}, life

    def issue_openchami(self, base_url: str, client_id: str, scope: str | None = None) -> tuple[str, int, str]:
        """A hydra-style client-credentials token: (token, expires_in, scope)."""
        scope = scope or DEFAULT_SCOPE
        claims, life = self._base_claims(base_url.rstrip("/") + "/", client_id,
                                         ["smd", "bss", "pcs", "cloud-init"], scope, ["admin"])
        claims["client_id"] = client_id
        return self.issuers["openchami"].sign(claims), life, scope

    def issue_keycloak(self, base_url: str, sub: str, azp: str, username: str,
                       realm_roles: list[str], client_roles: list[str]) -> tuple[str, int]:
        """A Keycloak ``shasta`` realm token: (token, expires_in)."""
        claims, life = self._base_claims(base_url.rstrip("/") + KEYCLOAK_REALM_PATH, sub,
                                         ["shasta", "account"], "profile email", list(realm_roles))
        claims.update({"typ": "Bearer", "azp": azp, "preferred_username": username,
                       "realm_access": {"roles": list(realm_roles)},
                       "resource_access": {"shasta": {"roles": list(client_roles)}}})
        return self.issuers["keycloak"].sign(claims), life

    def verify(self, token: str, kinds: tuple[str, ...]) -> tuple[str, dict]:
        """(issuer kind, claims) of a token signed by one of ``kinds``, else TokenError."""
        if not token:
            raise TokenError("missing", "no token found")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("invalid", "token is unauthorized") from None
        for kind in kinds:
            issuer = self.issuers[kind]
            if header.get("kid") not in (None, issuer.kid):
                continue
            try:
                claims = jwt.decode(token, issuer.public, algorithms=["RS256"],
                                    options={"verify_aud": False, "require": ["exp", "iat"]})
            except jwt.ExpiredSignatureError:
                raise TokenError("expired", "token is expired") from None
            except jwt.ImmatureSignatureError:
                raise TokenError("invalid", "token nbf validation failed") from None
            except jwt.PyJWTError:
                continue
            for claim in ("sub", "iss", "aud"):
                if not claims.get(claim):
                    raise TokenError("claims", "missing required claim")
            if kind == "keycloak" and not str(claims["iss"]).endswith(KEYCLOAK_REALM_PATH):
                raise TokenError("issuer", "Jwt issuer is not configured")
            return kind, claims
        raise TokenError("invalid", "token is unauthorized")


def bearer(headers: Any) -> str:
    """The bearer token of a request's Authorization header ('' if none)."""
    value = headers.get("Authorization", "") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def short_fingerprint(token: str) -> str:
    """An unguessable short handle for a token, for logs that must never hold the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:8] if token else "-"

