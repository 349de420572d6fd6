"""Site services: the central services a real site runs for its vClusters, in the lab.

A site has services its vClusters use but do not own: an artifact repository (Nexus on
CSM, a mirror on OpenCHAMI), a directory (LDAP), a DNS server. The lab plays each as a
container on its management network (``<prefix>-mgmt``) at a fixed address, started by
``vcluster-lab up`` and removed by ``down`` (and by the test suites' orphan reclaim,
which calls the same :func:`~vcluster_lab.nodes.podman.remove_lab`).

Adding one is a declarative step: a module in ``vcluster_lab/services/`` that defines
``SERVICE = SiteService(...)`` (see :class:`SiteService`); it is found by name, no list
to edit. The service's image is an image-builder recipe on the lab's base image, built
once and cached by recipe hash (:func:`vcluster_lab.images.cached_image`): a container
runs systemd like a node, so a service is usually a Debian package plus its config.
Credentials a service needs are generated once into the lab home (``site.json``, 0600)
and printed only by ``vcluster-lab env``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import ipaddress
import json
import os
import pkgutil
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

from . import images
from .containers import LAB_LABEL, PREFIX_LABEL, RUN_OPTIONS, lab_labels, podman, podman_json, wait_systemd
from .nodes.base import DriverError

#: On site-service containers only (value: the lab prefix), as io.vcluster.lab.node on nodes.
SITE_LABEL = "io.vcluster.lab.site"
SITE_NAME_LABEL = "io.vcluster.lab.site.name"
CONFIG_LABEL = "io.vcluster.lab.site.config"
#: Fixed addresses of site services: below the first service node (10.252.0.10).
FIRST_ADDRESS, LAST_ADDRESS = ipaddress.ip_address("10.252.0.2"), ipaddress.ip_address("10.252.0.9")
CREDENTIALS_FILE = "site.json"

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


class SiteServiceError(DriverError):
    """A site service could not be prepared or started; the message names it."""


@dataclasses.dataclass(frozen=True)
class Volume:
    """A host path mounted into the service container (``options``: podman's, e.g. ``ro``)."""

    host: Path
    container: str
    options: str = "ro"

    def arg(self) -> str:
        return f"{self.host}:{self.container}:{self.options}" if self.options else f"{self.host}:{self.container}"


@dataclasses.dataclass(frozen=True)
class SiteService:
    """One site service, declared in a module of ``vcluster_lab/services/``.

    ``recipe`` is an image-builder recipe (packages, cmds, copyfiles) applied to the lab's
    base image; ``copyfiles`` sources are relative to ``base_dir`` (the module's
    directory when it is None). ``urls`` maps a key to a URL template (``{address}`` is
    replaced): each is listed by ``status`` and exported by ``env`` as
    ``VCLUSTER_LAB_<NAME>_<KEY>``. ``ports`` are the TCP ports that answer once the
    service is ready. The optional hooks receive a :class:`ServiceContext`: ``prepare``
    runs on the controller before the container starts (build what it serves, write its
    configuration), ``volumes`` lists what to mount, ``env`` adds exports (secrets
    included: ``env`` prints them on purpose), ``ready`` waits for more than open ports.
    ``secrets`` names random credentials made once per lab home
    (:meth:`ServiceContext.secret`).
    """

    name: str
    address: str
    description: str
    recipe: dict
    ports: tuple[int, ...] = ()
    urls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    run_options: tuple[str, ...] = ()
    base_dir: Path | None = None
    prepare: Callable[["ServiceContext"], None] | None = None
    volumes: Callable[["ServiceContext"], Iterable[Volume]] | None = None
    env: Callable[["ServiceContext"], Mapping[str, str]] | None = None
    ready: Callable[["ServiceContext"], None] | None = None

    def check(self) -> None:
        """Refuse a declaration the lab cannot honour (a programming error, said plainly)."""
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", self.name):
            raise SiteServiceError(f"site service {self.name!r}: name must be lower-case letters and "
                                   "digits, starting with a letter, at most 16")
        try:
            addr = ipaddress.ip_address(self.address)
        except ValueError as exc:
            raise SiteServiceError(f"site service {self.name}: address {self.address!r} is not an IPv4 "
                                   "address") from exc
        if not FIRST_ADDRESS <= addr <= LAST_ADDRESS:
            raise SiteServiceError(f"site service {self.name}: address {self.address} is outside "
                                   f"{FIRST_ADDRESS}-{LAST_ADDRESS} (nodes start at 10.252.0.10)")
        for key in self.urls:
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
                raise SiteServiceError(f"site service {self.name}: url key {key!r} must be upper case "
                                       "(it names an environment variable)")

    def container(self, prefix: str) -> str:
        return f"{prefix}-site-{self.name}"

    @property
    def hostname(self) -> str:
        return f"site-{self.name}"

    @property
    def image_name(self) -> str:
        return f"vclab-site-{self.name}"

    def url_values(self) -> dict[str, str]:
        return {key: tmpl.format(address=self.address) for key, tmpl in self.urls.items()}


@dataclasses.dataclass
class ServiceContext:
    """What a service's hooks may use: where the lab keeps things, a log, its secrets."""

    service: SiteService
    home: Path
    prefix: str
    log: Log = _quiet
    #: the service's image, known before ``prepare`` runs (a hook may run it as a tool)
    image: images.BuiltImage | None = None

    @property
    def state_dir(self) -> Path:
        """``<home>/site/<name>`` (0700): per-lab files of the service (config, keys)."""
        path = self.home / "site" / self.service.name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @property
    def cache_dir(self) -> Path:
        """``$XDG_CACHE_HOME/vcluster-lab/site/<name>``: what outlives a lab (builds)."""
        path = images.cache_dir() / "site" / self.service.name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def secret(self, key: str) -> str:
        """A random credential of this service, made once and kept in ``site.json`` (0600)."""
        if key not in self.service.secrets:
            raise SiteServiceError(f"site service {self.service.name}: secret {key!r} is not declared "
                                   f"in its SiteService.secrets {self.service.secrets}")
        creds = read_credentials(self.home)
        mine = creds.setdefault(self.service.name, {})
        if key not in mine:
            mine[key] = secrets.token_urlsafe(24)
            _write_private(self.home / CREDENTIALS_FILE, creds)
        return mine[key]


def read_credentials(home: Path) -> dict:
    try:
        return json.loads((Path(home) / CREDENTIALS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_private(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------ the catalogue
def catalogue() -> dict[str, SiteService]:
    """Every service declared in ``vcluster_lab/services/``, by name, checked."""
    from . import services as package  # pylint: disable=import-outside-toplevel
    found: dict[str, SiteService] = {}
    addresses: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        service = getattr(module, "SERVICE", None)
        if not isinstance(service, SiteService):
            continue
        if service.base_dir is None:
            service = dataclasses.replace(service, base_dir=Path(module.__file__).resolve().parent)
        service.check()
        if service.name in found:
            raise SiteServiceError(f"site service {service.name} is declared twice")
        if service.address in addresses:
            raise SiteServiceError(f"site services {addresses[service.address]} and {service.name} "
                                   f"both claim {service.address}")
        found[service.name] = service
        addresses[service.address] = service.name
    return dict(sorted(found.items(), key=lambda kv: ipaddress.ip_address(kv[1].address)))


def select(names: str | Iterable[str] | None) -> list[SiteService]:
    """The services ``names`` asks for: ``all`` (or None), ``none``, or a comma list."""
    known = catalogue()
    if names is None or names == "all":
        return list(known.values())
    if isinstance(names, str):
        names = [] if names == "none" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SiteServiceError(f"unknown site service(s) {', '.join(unknown)}: the lab has "
                               f"{', '.join(known) or 'none'} (or say all or none)")
    return [known[n] for n in known if n in names]


# ------------------------------------------------------------------ images and containers
def ensure_image(service: SiteService, log: Log = _quiet) -> images.BuiltImage:
    """The service's image: built once on the base image, cached by recipe hash."""
    return images.cached_image(service.image_name, service.recipe, base_dir=service.base_dir, log=log)


def _config_hash(image: str, argv: list[str]) -> str:
    return hashlib.sha256(json.dumps([image, argv]).encode()).hexdigest()[:16]


def _inspect(name: str) -> dict | None:
    proc = podman("container", "inspect", name, check=False, what=name)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or "[]")
    return data[0] if data else None


def run_container(service: SiteService, ctx: ServiceContext, image: images.BuiltImage,
                  network: str) -> bool:
    """Start the service's container unless it already runs as asked; True when (re)started."""
    name = service.container(ctx.prefix)
    volumes = list(service.volumes(ctx)) if service.volumes else []
    argv = ["--network", f"{network}:ip={service.address},alias={service.hostname}",
            *service.run_options]
    for vol in volumes:
        argv += ["-v", vol.arg()]
    config = _config_hash(image.digest, argv)
    info = _inspect(name)
    if info is not None:
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get(CONFIG_LABEL) == config and (info.get("State") or {}).get("Status") == "running":
            return False
        podman("rm", "-f", "-t", "5", "--ignore", name, what=f"site service {service.name}")
    podman("run", "-d", "--name", name, "--hostname", service.hostname, *lab_labels(ctx.prefix),
           "--label", f"{SITE_LABEL}={ctx.prefix}", "--label", f"{SITE_NAME_LABEL}={service.name}",
           "--label", f"{CONFIG_LABEL}={config}", "--systemd=always", *RUN_OPTIONS, *argv,
           image.ref, what=f"site service {service.name}: start from {image.ref}")
    return True


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def wait_ready(service: SiteService, ctx: ServiceContext, timeout: float = 120) -> None:
    """Systemd has booted in the container and every declared port answers from the host."""
    name = service.container(ctx.prefix)
    deadline = time.monotonic() + timeout
    state = wait_systemd(name, deadline, f"site service {service.name}")
    if state == "degraded":
        failed = podman("exec", name, "systemctl", "--failed", "--no-legend", "--plain", check=False,
                        what=f"site service {service.name}").stdout.strip()
        raise SiteServiceError(f"site service {service.name}: units failed in {name}: {failed}; "
                               f"see podman exec {name} journalctl -b")
    for port in service.ports:
        while not _port_open(service.address, port):
            if time.monotonic() > deadline:
                raise SiteServiceError(f"site service {service.name}: nothing answers on "
                                       f"{service.address}:{port} after {timeout:.0f} s")
            time.sleep(0.3)
    if service.ready:
        service.ready(ctx)


def start(home: Path, prefix: str, names: str | Iterable[str] | None = "all", log: Log = _quiet,
          ensure_network: Callable[[], str] | None = None) -> list[SiteService]:
    """Prepare, build and start the chosen services (idempotent); return them.

    ``ensure_network`` makes the management network and returns its name (the podman
    node driver's, so both agree on name, subnet and labels).
    """
    chosen = select(names)
    if not chosen:
        return []
    if ensure_network is None:
        from .nodes.podman import PodmanDriver  # pylint: disable=import-outside-toplevel
        driver = PodmanDriver(home, prefix=prefix)

        def ensure_network() -> str:
            driver.ensure_mgmt_network()
            return driver.mgmt_network
    network = ensure_network()
    images.ensure_base(prefix, log)
    contexts = []
    for service in chosen:
        started = time.monotonic()
        ctx = ServiceContext(service, Path(home), prefix, log, ensure_image(service, log))
        if service.prepare:
            service.prepare(ctx)
        restarted = run_container(service, ctx, ctx.image, network)
        contexts.append((service, ctx, restarted, started))
    for service, ctx, restarted, started in contexts:
        wait_ready(service, ctx)
        urls = ", ".join(service.url_values().values())
        log(f"site service {service.name} at {service.address} "
            f"{'started' if restarted else 'already running'} in {time.monotonic() - started:.1f} s: {urls}")
    return chosen


# ------------------------------------------------------------------ status and env
def running(prefix: str) -> dict[str, dict]:
    """The site-service containers of lab ``prefix``: name -> {container, state, image}."""
    rows = podman_json("ps", "-a", "--format", "json", "--filter", f"label={SITE_LABEL}={prefix}",
                       what="site services") or []
    out = {}
    for row in rows:
        labels = row.get("Labels") or {}
        if labels.get(LAB_LABEL) == "1" and labels.get(PREFIX_LABEL) == prefix and SITE_NAME_LABEL in labels:
            out[labels[SITE_NAME_LABEL]] = {"container": (row.get("Names") or [""])[0],
                                            "state": row.get("State", ""), "image": row.get("Image", "")}
    return out


def status_lines(prefix: str) -> list[str]:
    """One line per site service of the lab: name, address, container state, URLs."""
    known = catalogue()
    lines = []
    for name, row in sorted(running(prefix).items()):
        service = known.get(name)
        urls = " ".join(f"{k}={v}" for k, v in service.url_values().items()) if service else ""
        address = service.address if service else "?"
        lines.append(f"  {name:8} {address:12} {row['state']:8} {urls}")
    return lines


def env(home: Path, prefix: str) -> dict[str, str]:
    """``VCLUSTER_LAB_<NAME>_<KEY>`` for each running service's URLs, plus its own exports."""
    known = catalogue()
    out: dict[str, str] = {}
    for name in sorted(running(prefix)):
        service = known.get(name)
        if service is None:
            continue
        for key, value in service.url_values().items():
            out[f"VCLUSTER_LAB_{name.upper()}_{key}"] = value
        if service.env:
            out.update(service.env(ServiceContext(service, Path(home), prefix)))
    return out
