"""What the scenario's site gives FirecREST, made on the controller (PyJWT and cryptography from the
project's environment) into the scenario's ephemeral directory DIR:

* the IdP: an RSA key (kid ``molecule-idp``), its JWKS (``idp/jwks.json``), the service account's
  client secret (``client_secret``) and the token its client-credentials endpoint hands out
  (``idp/service_token``: ``preferred_username`` f7t-health, no ``email``: FirecREST's service account);
* users' tokens for verify.yml (``tokens/``): ``alice`` (valid 2 h), ``expired`` (alice, expired 10 min
  ago), ``foreign`` (alice, same kid, signed with another key);
* the site's PKI: a CA (``tls/ca.pem``) and the service's certificate and key for HOST and ADDRESS
  (``tls/firecrest.crt``, ``tls/firecrest.key``).

Usage: make_site.py DIR HOST ADDRESS   (files already there are kept: a re-run changes nothing)
"""
from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import secrets
import sys
import time
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ISSUER = "https://idp.molecule.invalid/realms/site"
KID = "molecule-idp"


def write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(key, sub: str, lifetime: int, email: bool = True) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": sub, "preferred_username": sub, "aud": "firecrest", "iat": now - 5,
              "exp": now + lifetime, "scope": "openid"}
    if email:
        claims.update(email=f"{sub}@molecule.invalid", given_name=sub.capitalize(), family_name="Molecule")
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


def main(out: Path, host: str, address: str) -> None:
    if (out / "tokens" / "alice").exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256", "n": b64(public.n), "e": b64(public.e)}]}
    write(out / "idp" / "jwks.json", json.dumps(jwks).encode(), 0o644)
    write(out / "client_secret", secrets.token_urlsafe(24).encode())
    write(out / "idp" / "service_token", token(key, "f7t-health", 7 * 86400, email=False).encode())
    write(out / "tokens" / "alice", token(key, "alice", 7200).encode())
    write(out / "tokens" / "expired", token(key, "alice", -600).encode())
    write(out / "tokens" / "foreign", token(other, "alice", 7200).encode())

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "molecule site CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    srv_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = [x509.DNSName(host), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             x509.IPAddress(ipaddress.ip_address(address))]
    srv = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
           .issuer_name(ca_name).public_key(srv_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=7))
           .add_extension(x509.SubjectAlternativeName(names), critical=False)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .sign(ca_key, hashes.SHA256()))
    write(out / "tls" / "ca.pem", ca.public_bytes(serialization.Encoding.PEM), 0o644)
    write(out / "tls" / "firecrest.crt", srv.public_bytes(serialization.Encoding.PEM), 0o644)
    write(out / "tls" / "firecrest.key", pem(srv_key))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
