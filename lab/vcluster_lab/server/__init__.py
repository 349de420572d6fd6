"""The lab's control-plane server: both management-plane faces over one store.

Entry points (used by ``vcluster_lab.cli``):

``create_app(home: Path, driver: NodeDriver | str = "records", *, faults: dict | None = None,
tls: bool = True, resume: bool = True) -> flask.Flask``
    The WSGI app over ``home`` (``$VCLUSTER_LAB_HOME``: ``lab.db``, ``credentials.json``,
    ``jwt/``). ``driver`` is a NodeDriver or a driver name (``records`` | ``podman``).
    ``faults`` sets fault switches at start (see vcluster_lab.faults). ``resume`` restarts
    PCS transitions, BOS sessions and IMS jobs a previous server left unfinished.

``serve(home: Path, host: str = "127.0.0.1", port: int = 28443, driver_name: str = "podman",
tls: bool = True, *, faults: dict | None = None, extra_names: list[str] | None = None,
pid_file: bool = True, ready=None) -> None``
    Runs the app on werkzeug's threaded server in the foreground
    until SIGTERM/SIGINT. With ``tls`` the lab CA and server certificate are made (or
    reused) under ``home/tls`` (``ca.pem``, ``server.pem``, ``server-key.pem``), naming
    127.0.0.1, localhost, ``host`` and ``extra_names``. Writes ``home/server.pid`` (and leaves it
    for the caller that stops the server to remove once the pid is gone). ``port``
    0 picks a free port; ``ready(port)`` is called once the socket listens. Logs to
    the ``vcluster_lab`` logger (the caller decides where that goes); the access log has
    no headers, no bodies and no secrets.

``python -m vcluster_lab.server --home DIR [--host H] [--port P] [--driver records|podman]
[--no-tls] [--fault key=value ...]`` runs ``serve`` and prints ``LISTENING <port>`` once ready.

Faces and paths: see docs/architecture.md "The site" and docs/lab.md "Control plane".
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from flask import Flask

DEFAULT_PORT = 28443


def create_app(home: Path, driver: Any = "records", **kwargs: Any) -> "Flask":
    from .app import create_app as _create_app
    return _create_app(home, driver, **kwargs)


def serve(home: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT, driver_name: str = "podman",
          tls: bool = True, **kwargs: Any) -> None:
    from .app import serve as _serve
    return _serve(home, host, port, driver_name, tls, **kwargs)


__all__ = ["create_app", "serve", "DEFAULT_PORT"]
