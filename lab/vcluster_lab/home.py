"""Where a lab keeps its state, and the small record of how its server was started.

``$VCLUSTER_LAB_HOME`` (or ``--home``) defaults to ``<repo>/.lab`` when the package runs
from a checkout of hpc.vcluster (the usual case: ``pip install -e lab``), else to
``./.lab``. ``lab.json`` there remembers the port, driver and prefix ``up`` or ``serve``
used, so ``status``, ``env``, ``down`` and friends find the same lab without repeating
the options.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from . import inventory_data
from .containers import DEFAULT_PREFIX

DEFAULT_PORT = 28443
DEFAULT_SITE_NAME = "lab"
STATE_FILE = "lab.json"


def repo_root() -> Path | None:
    """The hpc.vcluster checkout this package belongs to, if any."""
    root = Path(__file__).resolve().parent.parent.parent
    return root if (root / "galaxy.yml").is_file() and (root / "lab").is_dir() else None


def lab_home(explicit: str | None = None) -> Path:
    """The lab's state directory (created 0700)."""
    if explicit:
        home = Path(explicit)
    elif os.environ.get("VCLUSTER_LAB_HOME"):
        home = Path(os.environ["VCLUSTER_LAB_HOME"])
    else:
        home = (repo_root() or Path.cwd()) / ".lab"
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def read_state(home: Path) -> dict:
    try:
        return json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_state(home: Path, **values) -> dict:
    """Merge ``values`` into ``lab.json`` (0600: it holds nothing secret, but nothing public)."""
    state = read_state(home)
    state.update(values)
    path = home / STATE_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return state


def resolve_prefix(home: Path) -> str:
    """``$VCLUSTER_LAB_PREFIX``, else the prefix this home was brought up with, else vclab."""
    return os.environ.get("VCLUSTER_LAB_PREFIX") or read_state(home).get("prefix") or DEFAULT_PREFIX


def resolve_port(home: Path, explicit: int | None = None) -> int:
    return int(explicit or read_state(home).get("port") or DEFAULT_PORT)


def resolve_mgmt_network(home: Path, explicit: str | None = None) -> str:
    """The management network this home's lab uses (``up --mgmt-network``; the NMN by default)."""
    return str(inventory_data.mgmt_network(explicit or read_state(home).get("mgmt_network")))


def resolve_site_name(home: Path) -> str:
    """The site name clients of this lab use (``up --site-name``; ``lab`` by default)."""
    return read_state(home).get("site_name") or DEFAULT_SITE_NAME
