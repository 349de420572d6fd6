"""The lab's own certificate authority and server certificate.

Clients verify the lab like a real site (``ca_path`` / ``--cacert``), so the lab makes a
CA once and a server certificate signed by it, both under ``$VCLUSTER_LAB_HOME/tls/``:
``ca.pem``, ``ca-key.pem`` (0600), ``server.pem`` and ``server-key.pem`` (0600). The
server certificate names 127.0.0.1 and localhost, plus any extra names the server is
started with (an address the podman nodes reach it on); it is re-issued when a name is
missing, the CA is kept.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_SANS = ("127.0.0.1", "localhost")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _cert_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def ensure_tls(home: Path, extra_names: list[str] | tuple[str, ...] = ()) -> Path:
    """Make (or reuse) the CA and the server certificate; return the tls directory."""
    tls_dir = Path(home) / "tls"
    ca_cert, ca_key = _ensure_ca(tls_dir)
    names = list(dict.fromkeys([*DEFAULT_SANS, *[n for n in extra_names if n and n not in ("0.0.0.0", "::")]]))
    _ensure_server_cert(tls_dir / "server.pem", tls_dir / "server-key.pem", names, ca_cert, ca_key)
    return tls_dir


def issue_server_cert(home: Path, cert_path: Path, key_path: Path, names: list[str] | tuple[str, ...]) -> None:
    """A server certificate for ``names`` signed by the lab's CA (made if missing), at
    ``cert_path`` and ``key_path`` (0600); kept while it names them all and is fresh.

    Site services (the directory's LDAPS) use it, so clients verify them with the same
    ``ca.pem`` as the control plane.
    """
    ca_cert, ca_key = _ensure_ca(Path(home) / "tls")
    _ensure_server_cert(Path(cert_path), Path(key_path), list(dict.fromkeys(names)), ca_cert, ca_key)


def _ensure_ca(tls_dir: Path):
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key_pem = tls_dir / "ca.pem", tls_dir / "ca-key.pem"
    now = datetime.datetime.now(datetime.timezone.utc)
    if ca_pem.exists() and ca_key_pem.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_pem.read_bytes(), None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vcluster-lab"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "vcluster-lab CA")])
        ca_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
                   .sign(ca_key, hashes.SHA256()))
        _write_private(ca_key_pem, _key_pem(ca_key))
        ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return ca_cert, ca_key


def _ensure_server_cert(srv_pem: Path, srv_key_pem: Path, names: list[str], ca_cert, ca_key) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    if srv_pem.exists() and srv_key_pem.exists():
        cert = x509.load_pem_x509_certificate(srv_pem.read_bytes())
        fresh = cert.not_valid_after_utc > now + datetime.timedelta(days=7)
        if fresh and set(names) <= _cert_names(cert) and cert.issuer == ca_cert.subject:
            return
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vcluster-lab"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_private(srv_key_pem, _key_pem(key))
    srv_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """The SSL context the HTTPS server listens with."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(Path(tls_dir) / "server.pem"), str(Path(tls_dir) / "server-key.pem"))
    return ctx
