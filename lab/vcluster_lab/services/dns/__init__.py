"""The site DNS (10.252.0.4): PowerDNS Authoritative with its HTTP API, as CSM runs it.

The vCluster's network vService registers its zones here through the API
(``hpc.vcluster.dns_zone``) and points the nodes' resolver at it. The API key is made once
per lab (``site.json``, printed only by ``vcluster-lab env``); the server keeps only its
scrypt hash (PowerDNS >= 4.6 accepts a hashed ``api-key``), in a file mounted read-only.
The zones live in an SQLite database on the lab's home, so a restart of the container
keeps them.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.request

from ...site_services import ServiceContext, SiteService, SiteServiceError, Volume

ADDRESS = "10.252.0.4"
API_PORT = 8081
#: The domain under which vCluster zones live (<vcluster>.<domain>).
DOMAIN = "vcluster.internal"


def scrypt_hash(key: str, salt: bytes | None = None) -> str:
    """The PowerDNS form of a hashed API key ($scrypt$ln=10,p=1,r=8$salt$hash, base64)."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=2 ** 10, r=8, p=1, dklen=32)
    return "$scrypt$ln=10,p=1,r=8$%s$%s" % (base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def _prepare(ctx: ServiceContext) -> None:
    key = ctx.secret("api_key")
    conf = ctx.state_dir / "api.conf"
    stamp = ctx.state_dir / "api.conf.key-sha256"
    want = hashlib.sha256(key.encode()).hexdigest()
    if not conf.is_file() or not stamp.is_file() or stamp.read_text().strip() != want:
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write("# made by vcluster-lab: the scrypt hash of the lab's DNS API key\n"
                     f"api-key={scrypt_hash(key)}\n")
        stamp.write_text(want + "\n")
    (ctx.state_dir / "db").mkdir(exist_ok=True)


def _volumes(ctx: ServiceContext) -> list[Volume]:
    return [Volume(ctx.state_dir / "api.conf", "/etc/powerdns/pdns.d/zz-api.conf", "ro"),
            Volume(ctx.state_dir / "db", "/var/lib/powerdns/db", "")]


def _env(ctx: ServiceContext) -> dict[str, str]:
    """What the network vService reads (its module's and role's VCLUSTER_DNS_* settings)."""
    address = ctx.service.address
    return {"VCLUSTER_DNS_API_URL": f"http://{address}:{API_PORT}",
            "VCLUSTER_DNS_API_KEY": ctx.secret("api_key"),
            "VCLUSTER_DNS_SERVER_ID": "localhost",
            "VCLUSTER_DNS_NAMESERVERS": address,
            "VCLUSTER_DNS_DOMAIN": DOMAIN}


def _ready(ctx: ServiceContext) -> None:
    """The API answers with the lab's key (the key file and the database are in place)."""
    address = ctx.service.address
    request = urllib.request.Request(f"http://{address}:{API_PORT}/api/v1/servers/localhost",
                                     headers={"X-API-Key": ctx.secret("api_key")})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            json.loads(reply.read())
    except (urllib.error.URLError, ValueError, OSError) as exc:
        raise SiteServiceError(f"site service dns: the PowerDNS API at {address}:{API_PORT} does not "
                               f"accept the lab's key ({exc})") from exc


SERVICE = SiteService(
    name="dns",
    address=ADDRESS,
    description="site DNS: PowerDNS Authoritative with its HTTP API (vCluster zones)",
    recipe={
        "options": {"name": "vclab-site-dns", "pkg_manager": "apt"},
        "packages": ["pdns-server", "pdns-backend-sqlite3", "sqlite3"],
        "copyfiles": [{"src": "pdns.conf", "dest": "/etc/powerdns/pdns.d/vclab.conf"},
                      {"src": "pdns-init.sh", "dest": "/usr/local/sbin/vclab-pdns-init"}],
        "cmds": [{"cmd": "chmod 755 /usr/local/sbin/vclab-pdns-init && chmod 644 /etc/powerdns/pdns.d/vclab.conf"
                         " && mkdir -p /var/lib/powerdns/db /etc/systemd/system/pdns.service.d"
                         " && printf '[Service]\\nExecStartPre=+/usr/local/sbin/vclab-pdns-init\\n'"
                         " > /etc/systemd/system/pdns.service.d/vclab.conf && systemctl enable pdns.service"}],
    },
    ports=(53, API_PORT),
    urls={"API_URL": f"http://{{address}}:{API_PORT}", "NAMESERVER": "{address}"},
    secrets=("api_key",),
    prepare=_prepare,
    volumes=_volumes,
    env=_env,
    ready=_ready,
)
