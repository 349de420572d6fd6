"""Assembles the control plane: the Lab (store, driver, tokens, faults, engines) and its Flask app."""
from __future__ import annotations

import datetime
import importlib
import logging
import os
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.serving import WSGIRequestHandler, make_server

from .. import faults as faults_mod
from ..faults import Faults
from ..inventory_data import mgmt_gateway
from ..nodes.base import NodeDriver
from ..store import Store
from ..tls import ensure_tls, server_context
from ..tokens import Credentials, Tokens
from . import admin, bos, bss, cloud_init, fabric, ims, pcs, s3, smd, tokens, ufm
from .bos_runner import SessionRunner
from .common import ApiError, go_error, problem
from .power import PowerEngine

log = logging.getLogger("vcluster_lab.server")
DEFAULT_PORT = 28443
# The longest request target (path and query) the lab accepts. The gateways in front of the
# real services refuse long URLs at about this size (nginx's request-line buffer is 8 KiB;
# HAProxy must fit the whole request head in 16 KiB, a JWT included), so a client that works
# here does not send node lists in a URL that a site's gateway would refuse.
MAX_TARGET = 8192


class RequestCounter:
    """How many requests the services got (not ``/lab/``), per method and route: what the
    layer-1 benchmark reads to show that a step costs the same number of calls at any size."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self, reset: bool = False) -> dict[str, int]:
        with self._lock:
            out = dict(self._counts)
            if reset:
                self._counts = {}
        return out


class Lab:
    """Everything a request handler or worker needs, hung on ``app.extensions['vclab']``."""

    def __init__(self, home: Path, driver: NodeDriver | str, faults: dict | None = None, tls: bool = True):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.home / "lab.db")
        self.driver = load_driver(driver, self.home, self.store) if isinstance(driver, str) else driver
        self.creds = Credentials(self.home)
        initial = faults_mod.from_env()
        initial.update(faults or {})
        self.faults = Faults(self.store, initial)
        self.tokens = Tokens(self.home, lambda: self.faults.token_lifetime)
        self.tls = tls
        self.started = time.time()
        self.started_iso = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.power = PowerEngine(self)
        self.bos = SessionRunner(self)
        self.ims = ims.JobRunner(self)
        self.fabric_pool = ThreadPoolExecutor(2, thread_name_prefix="fabric")
        self.requests = RequestCounter()
        self.admin_pool = ThreadPoolExecutor(2, thread_name_prefix="admin")
        self._init_cloud_init()

    def _init_cloud_init(self) -> None:
        """Lab cluster defaults so cloud-init hostnames match SMD's (nid%06d) and root gets the lab key."""
        if self.store.kv_get("ci.defaults") is not None:
            return
        keys = []
        pub = self.home / "ssh" / "id_ed25519.pub"
        if pub.exists():
            keys.append(pub.read_text().strip())
        self.store.kv_set("ci.defaults", {"cloud_provider": "vcluster-lab", "cluster-name": "vclab",
                                          "short-name": "nid", "nid-length": 6, "public-keys": keys})

    def hostname_of(self, xname: str) -> str:
        with self.store.read() as c:
            row = c.execute("SELECT description FROM eth_interfaces WHERE component_id=? AND description != '' "
                            "ORDER BY id LIMIT 1", (xname,)).fetchone()
            if row:
                return row[0]
            nid = c.execute("SELECT nid FROM components WHERE id=?", (xname,)).fetchone()
        return f"nid{nid[0]:06d}" if nid and nid[0] is not None else xname

    def resume(self) -> None:
        self.power.resume()
        self.bos.resume()
        self.ims.resume()

    def shutdown(self) -> None:
        for pool in (self.fabric_pool, self.admin_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        self.power.shutdown()
        self.bos.shutdown()
        self.ims.shutdown()
        self.store.close()


def load_driver(name: str, home: Path, store: Store) -> NodeDriver:
    """``records`` (no containers) or ``podman`` (vcluster_lab.nodes.podman: ``make_driver(home)`` or ``PodmanDriver(home)``)."""
    if name == "records":
        from ..nodes.records import RecordsDriver
        return RecordsDriver(store)
    if name == "podman":
        mod = importlib.import_module("vcluster_lab.nodes.podman")
        if hasattr(mod, "make_driver"):
            return mod.make_driver(home)
        return mod.PodmanDriver(home)
    raise ValueError(f"unknown node driver {name!r}: use records or podman")


class _LimitTarget:
    """414 for a request target longer than MAX_TARGET, as a site's gateway answers it."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        target = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
        if target > MAX_TARGET:
            body = (f"414 Request-URI Too Long: the request target has {target} bytes, the gateway "
                    f"takes {MAX_TARGET}\n").encode()
            start_response("414 Request-URI Too Long", [("Content-Type", "text/plain; charset=utf-8"),
                                                        ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


class _StripSlashes:
    """chi's StripSlashes: ``/hsm/v2/groups/`` is ``/hsm/v2/groups`` (cloud-init's own SMD client adds the slash)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.app(environ, start_response)


def create_app(home: Path, driver: NodeDriver | str = "records", *, faults: dict | None = None,
               tls: bool = True, resume: bool = True) -> Flask:
    """The control-plane WSGI app over ``$VCLUSTER_LAB_HOME``; ``driver`` is a NodeDriver or its name."""
    lab = Lab(home, driver, faults, tls)
    app = Flask("vcluster_lab")
    app.url_map.strict_slashes = False
    app.extensions["vclab"] = lab
    app.register_blueprint(smd.bp, url_prefix="/hsm/v2", name="smd")
    app.register_blueprint(smd.bp, url_prefix="/apis/smd/hsm/v2", name="smd_csm")
    app.register_blueprint(bss.bp, url_prefix="/boot/v1", name="bss")
    app.register_blueprint(bss.bp, url_prefix="/apis/bss/boot/v1", name="bss_csm")
    app.register_blueprint(pcs.bp, url_prefix="/power-control/v1", name="pcs")
    app.register_blueprint(pcs.bp, url_prefix="/v1", name="pcs_v1")
    app.register_blueprint(pcs.bp, url_prefix="/apis/power-control/v1", name="pcs_csm")
    app.register_blueprint(cloud_init.bp, url_prefix="/cloud-init", name="cloud_init")
    app.register_blueprint(cloud_init.bp, url_prefix="", name="cloud_init_root")
    app.register_blueprint(tokens.bp)
    app.register_blueprint(bos.bp, url_prefix="/apis/bos")
    app.register_blueprint(ims.bp, url_prefix="/apis/ims")
    app.register_blueprint(fabric.bp, url_prefix="/apis/fabric-manager")
    app.register_blueprint(ufm.bp, url_prefix="/ufmRest")
    app.register_blueprint(s3.bp, url_prefix="/s3")
    app.register_blueprint(s3.sts_bp, url_prefix="/apis/sts")
    app.register_blueprint(admin.bp, url_prefix="/lab/v1")

    @app.before_request
    def _faults():
        if request.path.startswith("/lab/"):
            return None
        rule = request.url_rule.rule if request.url_rule is not None else request.path
        lab.requests.add(f"{request.method} {rule}")
        lab.faults.delay()
        status = lab.faults.injected_error()
        if status:
            return problem(status, f"lab fault injection: this request failed on purpose "
                                   f"(error_rate {lab.faults.get()['error_rate']})")
        return None

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if isinstance(exc, NotFound):
            return go_error("404 page not found", 404)
        if isinstance(exc, MethodNotAllowed):
            resp = problem(405, f"method {request.method} is not allowed on {request.path}")
            resp.headers["Allow"] = ", ".join(sorted(exc.valid_methods or []))
            return resp
        return problem(exc.code or 500, exc.description or "")

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, f"internal error in the lab: {type(exc).__name__}: {exc}")

    app.wsgi_app = _LimitTarget(_StripSlashes(app.wsgi_app))  # type: ignore[method-assign]
    if resume:
        lab.resume()
    return app


_SECRET_QUERY = re.compile(r"(?i)((?:client_secret|password|token|access_token|refresh_token)=)[^&\s]*")


class _RequestHandler(WSGIRequestHandler):
    """An access log line without headers, bodies or secrets (werkzeug closes every connection)."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        path = _SECRET_QUERY.sub(r"\1***", self.path)
        log.info('%s "%s %s" %s %s', self.address_string(), self.command, path, code, size)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        log.warning("%s %s", self.address_string(), format % args)


#: What the management network's gateway serves the nodes: the site IdP's token service only
#: (JWKS and token endpoints of both faces), for services on a vCluster that check users' tokens
#: (FirecREST). Everything else of the control plane stays on the loopback interface.
NODE_TOKEN_PATHS = frozenset({
    "/keycloak/realms/shasta/protocol/openid-connect/token",
    "/keycloak/realms/shasta/protocol/openid-connect/certs",
    "/keycloak/realms/shasta/.well-known/openid-configuration",
    "/oauth2/token", "/.well-known/jwks.json", "/keys", "/.well-known/openid-configuration"})


def token_service_only(app: Any) -> Any:
    """``app`` answering :data:`NODE_TOKEN_PATHS` only (404 for anything else)."""
    def wsgi(environ, start_response):
        if environ.get("PATH_INFO", "") in NODE_TOKEN_PATHS:
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"the management network serves the site's token service only\n"]
    return wsgi


def _serve_token_service(app: Any, port: int, stop: threading.Event, servers: list) -> None:
    """The token service on the management gateway (plain HTTP, as the nodes' network is the site's
    management network), bound as soon as the network's bridge exists (podman makes it with the
    first container on it), until ``stop``."""
    try:
        gateway = mgmt_gateway()
    except ValueError:
        return
    while not stop.is_set():
        try:  # the address is the host's once the bridge exists (werkzeug exits on a failed bind)
            with socket.socket() as probe:
                probe.bind((gateway, 0))
        except OSError:
            stop.wait(2)
            continue
        try:
            server = make_server(gateway, port, token_service_only(app), threaded=True,
                                 request_handler=_RequestHandler)
        except (OSError, SystemExit):
            log.warning("token service for the nodes: cannot listen on %s:%d", gateway, port)
            return
        server.daemon_threads = True
        servers.append(server)
        log.info("token service for the nodes on http://%s:%d", gateway, port)
        server.serve_forever()
        return


def serve(home: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT, driver_name: str = "podman",
          tls: bool = True, *, faults: dict | None = None, extra_names: list[str] | None = None,
          pid_file: bool = True, ready: Any = None) -> None:
    """Run the control plane in the foreground until SIGTERM/SIGINT (threaded werkzeug server).

    ``port`` 0 picks a free port; ``ready(port)`` is called once the socket listens.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    names = [host, *(extra_names or [])]
    if host in ("0.0.0.0", "::"):  # reachable from the nodes: name the management gateway too
        names.append(mgmt_gateway())
    ctx = server_context(ensure_tls(home, names)) if tls else None
    app = create_app(home, driver_name, faults=faults, tls=tls)
    server = make_server(host, port, app, threaded=True, ssl_context=ctx, request_handler=_RequestHandler)
    server.daemon_threads = True
    pid_path = home / "server.pid"
    if pid_file:
        pid_path.write_text(f"{os.getpid()}\n")

    # the nodes reach the token service on the management network's gateway (podman driver only)
    node_servers: list = []
    node_stop = threading.Event()
    if driver_name == "podman":
        threading.Thread(target=_serve_token_service, args=(app, server.server_port, node_stop, node_servers),
                         daemon=True, name="node-token-service").start()

    def _stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    if threading.current_thread() is threading.main_thread():  # signals can only be set there
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    scheme = "https" if tls else "http"
    log.info("vcluster-lab control plane on %s://%s:%d (driver %s, home %s)", scheme, host, server.server_port,
             app.extensions["vclab"].driver.name, home)
    if ready is not None:
        ready(server.server_port)
    try:
        server.serve_forever()
    finally:
        node_stop.set()
        for node_server in list(node_servers):  # not waited for: the process ends
            threading.Thread(target=node_server.shutdown, daemon=True).start()
        app.extensions["vclab"].shutdown()
        # server.pid stays: whoever stops the server waits for this pid to be gone (not for the
        # file to go, which would come before the interpreter has finished exiting) and removes it
        log.info("vcluster-lab control plane stopped")

