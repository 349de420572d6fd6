"""The site directory (10.252.0.3): slapd (OpenLDAP 2.5 from Debian), as a site's central IAM.

The iam vService points SSSD on a vCluster's nodes at it. It answers LDAPS on 636 and LDAP
with StartTLS on 389, with a certificate the lab's CA signs (``<home>/tls/ca.pem``, the
same CA as the control plane's). Anonymous binds and unauthenticated operations are
refused, and a simple bind needs TLS; a read-only account (``cn=reader,ou=services``) reads
users and groups but no password. The entries are seed data: the lab writes the
configuration and the entries (``config.ldif``, ``seed.ldif``) into the lab home and the
container rebuilds its database from them at each start (``vclab-ldap-init``), so the
directory always holds exactly :data:`USERS` and :data:`GROUPS`.

Each user has an SSH key pair made once into ``<home>/site/ldap/keys/<user>`` (0600) whose
public half is the user's ``sshPublicKey``: tests log in as them with it. The passwords
(the admin's, the reader's) are made once per lab (``site.json``); the directory keeps
only their salted SHA-1 hashes (``{SSHA}``). ``vcluster-lab env`` prints what a client
needs: ``VCLUSTER_LAB_LDAP_*`` and the ``VCLUSTER_IAM_*`` settings the iam role reads.
"""
from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ... import tls
from ...site_services import ServiceContext, SiteService, SiteServiceError, Volume

ADDRESS = "10.252.0.3"
BASE_DN = "dc=vcluster,dc=lab"
ADMIN_DN = f"cn=admin,{BASE_DN}"
READER_DN = f"cn=reader,ou=services,{BASE_DN}"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
#: The directory's users: name -> (uidNumber, primary group). UIDs from 5000 leave room for
#: the nodes' own users (Debian gives local users 1000-59999 from 1000 up; tests use 3001).
USERS = {"alice": (5001, "hpc-users"), "bob": (5002, "hpc-users"), "mallory": (5003, "outsiders")}
#: name -> (gidNumber, members besides those whose primary group it is)
GROUPS = {"hpc-users": (5100, ["alice", "bob"]), "hpc-admins": (5101, ["alice"]),
          "outsiders": (5102, ["mallory"])}
SHELL = "/bin/bash"


def ssha(password: str, salt: bytes | None = None) -> str:
    """The ``{SSHA}`` form slapd checks a simple bind against (SHA-1 of password + salt)."""
    salt = salt if salt is not None else os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``path`` only when its text changes (a second ``up`` keeps the container)."""
    if path.is_file() and path.read_text() == text:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def keys_dir(state_dir: Path) -> Path:
    return state_dir / "keys"


def user_keys(state_dir: Path) -> dict[str, str]:
    """Each user's SSH key pair, made once (``keys/<user>`` 0600, ``keys/<user>.pub``): name -> public key."""
    where = keys_dir(state_dir)
    where.mkdir(mode=0o700, exist_ok=True)
    out = {}
    for user in USERS:
        private, public = where / user, where / f"{user}.pub"
        if not (private.is_file() and public.is_file()):
            key = ed25519.Ed25519PrivateKey.generate()
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption()).decode()
            line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH).decode()
            _write(private, pem, 0o600)
            _write(public, f"{line} {user}@vcluster-lab\n", 0o644)
        out[user] = public.read_text().strip()
    return out


def config_ldif(admin_hash: str) -> str:
    """cn=config: schemas (core, cosine, nis, inetorgperson, openssh-lpk), TLS, the ACLs."""
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: /run/slapd/slapd.pid
olcArgsFile: /run/slapd/slapd.args
olcLogLevel: stats
olcTLSCertificateFile: /etc/ldap/tls/server.pem
olcTLSCertificateKeyFile: /etc/ldap/tls/server-key.pem
olcTLSCACertificateFile: /etc/ldap/tls/ca.pem
olcTLSProtocolMin: 3.3
olcDisallows: bind_anon
olcRequires: authc
olcSecurity: simple_bind=128

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

include: file:///etc/ldap/schema/openssh-lpk.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: 500
olcAccess: {{0}}to dn.base="" by * read
olcAccess: {{1}}to dn.base="cn=subschema" by * read

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: /var/lib/ldap
olcSuffix: {BASE_DN}
olcRootDN: {ADMIN_DN}
olcRootPW: {admin_hash}
olcDbMaxSize: 104857600
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,memberUid eq
olcDbIndex: uidNumber,gidNumber eq
olcAccess: {{0}}to attrs=userPassword by self =xw by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{READER_DN}" read by self read by * none
"""


def seed_ldif(reader_hash: str, keys: dict[str, str]) -> str:
    """The entries: the base, ou=people/groups/services, the reader, the users and groups."""
    parts = [f"""dn: {BASE_DN}
objectClass: top
objectClass: dcObject
objectClass: organization
o: vcluster-lab site
dc: vcluster
""", f"""dn: {PEOPLE_DN}
objectClass: organizationalUnit
ou: people
""", f"""dn: {GROUPS_DN}
objectClass: organizationalUnit
ou: groups
""", f"""dn: ou=services,{BASE_DN}
objectClass: organizationalUnit
ou: services
""", f"""dn: {READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
description: read-only account of the site's clients (SSSD)
userPassword: {reader_hash}
"""]
    for user, (uid, group) in USERS.items():
        gid = GROUPS[group][0]
        parts.append(f"""dn: uid={user},{PEOPLE_DN}
objectClass: top
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: ldapPublicKey
uid: {user}
cn: {user.capitalize()}
sn: {user.capitalize()}
uidNumber: {uid}
gidNumber: {gid}
homeDirectory: /home/{user}
loginShell: {SHELL}
sshPublicKey: {keys[user]}
""")
    for group, (gid, members) in GROUPS.items():
        lines = "".join(f"memberUid: {m}\n" for m in members)
        parts.append(f"""dn: cn={group},{GROUPS_DN}
objectClass: top
objectClass: posixGroup
cn: {group}
gidNumber: {gid}
{lines}""")
    return "\n".join(parts)


def etc_dir(ctx: ServiceContext) -> Path:
    path = ctx.state_dir / "etc"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def write_files(home: Path, etc: Path, address: str, admin_password: str, reader_password: str,
                state_dir: Path) -> None:
    """What the container reads at start (``etc``), from the lab's CA and the passwords.

    A hash is made again only when its password changed, so a second ``up`` writes nothing.
    """
    for name, password in (("admin", admin_password), ("reader", reader_password)):
        stamp = etc / f"{name}.sha256"
        want = hashlib.sha256(password.encode()).hexdigest()
        if not stamp.is_file() or stamp.read_text().strip() != want or not (etc / f"{name}.hash").is_file():
            _write(etc / f"{name}.hash", ssha(password) + "\n")
            _write(stamp, want + "\n")
    admin_hash = (etc / "admin.hash").read_text().strip()
    reader_hash = (etc / "reader.hash").read_text().strip()
    _write(etc / "config.ldif", config_ldif(admin_hash))
    _write(etc / "seed.ldif", seed_ldif(reader_hash, user_keys(state_dir)))
    tls.issue_server_cert(home, etc / "server.pem", etc / "server-key.pem",
                          [address, "site-ldap", "localhost", "127.0.0.1"])
    _write(etc / "ca.pem", (Path(home) / "tls" / "ca.pem").read_text(), 0o644)


def _prepare(ctx: ServiceContext) -> None:
    write_files(ctx.home, etc_dir(ctx), ctx.service.address, ctx.secret("admin_password"),
                ctx.secret("reader_password"), ctx.state_dir)


def _volumes(ctx: ServiceContext) -> list[Volume]:
    return [Volume(etc_dir(ctx), "/etc/vclab-ldap", "ro")]


def _env(ctx: ServiceContext) -> dict[str, str]:
    """The directory for clients: the lab's names, and the iam vService's site settings."""
    address = ctx.service.address
    ca = str(Path(ctx.home) / "tls" / "ca.pem")
    password = ctx.secret("reader_password")
    return {"VCLUSTER_LAB_LDAP_BASE_DN": BASE_DN,
            "VCLUSTER_LAB_LDAP_BIND_DN": READER_DN,
            "VCLUSTER_LAB_LDAP_BIND_PASSWORD": password,
            "VCLUSTER_LAB_LDAP_CA_PATH": ca,
            "VCLUSTER_LAB_LDAP_USER_KEYS_DIR": str(keys_dir(ctx.state_dir)),
            "VCLUSTER_LAB_LDAP_USERS": ",".join(USERS),
            "VCLUSTER_IAM_URI": f"ldaps://{address}",
            "VCLUSTER_IAM_BASE_DN": BASE_DN,
            "VCLUSTER_IAM_BIND_DN": READER_DN,
            "VCLUSTER_IAM_BIND_PASSWORD": password,
            "VCLUSTER_IAM_CA_PATH": ca}


def _ready(ctx: ServiceContext) -> None:
    """The reader binds over LDAPS from inside the container and finds alice."""
    name = ctx.service.container(ctx.prefix)
    proc = subprocess.run(
        ["podman", "exec", "-i", "-e", "LDAPTLS_CACERT=/etc/ldap/tls/ca.pem", name, "ldapsearch", "-LLL", "-x",
         "-o", "nettimeout=10", "-H", "ldaps://localhost", "-D", READER_DN, "-y", "/dev/stdin",
         "-b", PEOPLE_DN, "(uid=alice)", "uid"],
        input=ctx.secret("reader_password"), capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0 or "uid: alice" not in proc.stdout:
        raise SiteServiceError(f"site service ldap: the reader cannot search the directory over LDAPS "
                               f"(status {proc.returncode}): {proc.stderr.strip()[:300]}; see podman exec "
                               f"{name} journalctl -u vclab-slapd")


SERVICE = SiteService(
    name="ldap",
    address=ADDRESS,
    description="site directory: slapd (LDAPS, StartTLS) with users, groups and their SSH keys",
    recipe={
        "options": {"name": "vclab-site-ldap", "pkg_manager": "apt"},
        "packages": ["slapd", "ldap-utils"],
        "copyfiles": [{"src": "ldap-init.sh", "dest": "/usr/local/sbin/vclab-ldap-init"},
                      {"src": "vclab-slapd.service", "dest": "/etc/systemd/system/vclab-slapd.service"},
                      {"src": "openssh-lpk.ldif", "dest": "/etc/ldap/schema/openssh-lpk.ldif"}],
        "cmds": [{"cmd": "chmod 755 /usr/local/sbin/vclab-ldap-init"
                         " && chmod 644 /etc/systemd/system/vclab-slapd.service"
                         " /etc/ldap/schema/openssh-lpk.ldif"
                         " && systemctl mask slapd.service && systemctl enable vclab-slapd.service"}],
    },
    ports=(389, 636),
    urls={"URI": "ldaps://{address}", "STARTTLS_URI": "ldap://{address}"},
    secrets=("admin_password", "reader_password"),
    prepare=_prepare,
    volumes=_volumes,
    env=_env,
    ready=_ready,
)
