"""Fault switches: what a flaky site does to its clients, on demand.

* ``latency_ms`` (+ ``jitter_ms``, uniform 0..jitter added): every non-admin request waits first.
* ``error_rate`` (0..1): that fraction of non-admin requests is answered 500 or 503
  (``error_codes``) with an RFC 7807 body *before any processing*, so nothing changes.
* ``token_lifetime`` (seconds): lifetime of tokens issued from now on (both faces).
* ``dead_nodes``: nodes that died (driver.kill; SMD State Standby / Flag Alert; PCS
  cannot power them on until revived). The admin API applies the driver side.

The switches live in the store (so a restarted server keeps a dead node dead). Start-up
values come from ``serve(..., faults=...)`` or the environment
(``VCLUSTER_LAB_FAULT_LATENCY_MS``, ``..._JITTER_MS``, ``..._ERROR_RATE``,
``..._ERROR_CODES`` comma list, ``..._TOKEN_LIFETIME``) and override what was stored.
"""
from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

from .server.xname import is_valid, normalize
from .store import Store

DEFAULTS: dict[str, Any] = {"latency_ms": 0, "jitter_ms": 0, "error_rate": 0.0,
                            "error_codes": [500, 503], "token_lifetime": 3600, "dead_nodes": []}
ENV = {"latency_ms": "VCLUSTER_LAB_FAULT_LATENCY_MS", "jitter_ms": "VCLUSTER_LAB_FAULT_JITTER_MS",
       "error_rate": "VCLUSTER_LAB_FAULT_ERROR_RATE", "error_codes": "VCLUSTER_LAB_FAULT_ERROR_CODES",
       "token_lifetime": "VCLUSTER_LAB_FAULT_TOKEN_LIFETIME"}
ALLOWED_CODES = {500, 502, 503, 504}


class FaultError(ValueError):
    """A fault setting is out of range; the message names the switch."""


def validate(patch: dict) -> dict:
    """Check and normalise a partial fault setting."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        if key not in DEFAULTS:
            raise FaultError(f"unknown fault switch {key!r}; known: {', '.join(DEFAULTS)}")
        try:
            if key in ("latency_ms", "jitter_ms"):
                v = int(value)
                if not 0 <= v <= 120_000:
                    raise FaultError(f"{key} must be within 0..120000")
            elif key == "error_rate":
                v = float(value)
                if not 0.0 <= v <= 1.0:
                    raise FaultError("error_rate must be within 0..1")
            elif key == "token_lifetime":
                v = int(value)
                if not 1 <= v <= 366 * 86400:
                    raise FaultError("token_lifetime must be within 1..31622400 seconds")
            elif key == "error_codes":
                codes = value.split(",") if isinstance(value, str) else list(value)
                v = sorted({int(c) for c in codes})
                if not v or not set(v) <= ALLOWED_CODES:
                    raise FaultError(f"error_codes must be a non-empty subset of {sorted(ALLOWED_CODES)}")
            else:  # dead_nodes
                if not isinstance(value, list):
                    raise FaultError("dead_nodes must be a list of node xnames")
                v = sorted({normalize(x) for x in value})
                bad = [x for x in v if not is_valid(x)]
                if bad:
                    raise FaultError(f"dead_nodes: invalid xnames {bad}")
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FaultError):
                raise
            raise FaultError(f"{key}: {exc}") from None
        out[key] = v
    return out


def from_env(environ: dict | None = None) -> dict:
    env = os.environ if environ is None else environ
    return validate({k: env[name] for k, name in ENV.items() if env.get(name)})


class Faults:
    """The current switches, persisted in the store, with the request-path checks."""

    KEY = "faults"

    def __init__(self, store: Store, initial: dict | None = None):
        self.store = store
        self._lock = threading.Lock()
        self._rng = random.Random()
        state = dict(DEFAULTS)
        state.update(store.kv_get(self.KEY, {}) or {})
        state.update(validate(initial or {}))
        self._state = state
        store.kv_set(self.KEY, state)

    def get(self) -> dict:
        with self._lock:
            return {k: (list(v) if isinstance(v, list) else v) for k, v in self._state.items()}

    def update(self, patch: dict) -> dict:
        clean = validate(patch)
        with self._lock:
            self._state.update(clean)
            self.store.kv_set(self.KEY, self._state)
        return self.get()

    def reset(self) -> dict:
        with self._lock:
            self._state = dict(DEFAULTS)
            self.store.kv_set(self.KEY, self._state)
        return self.get()

    @property
    def token_lifetime(self) -> int:
        return int(self._state["token_lifetime"])

    def is_dead(self, xname: str) -> bool:
        return xname in self._state["dead_nodes"]

    def delay(self) -> None:
        """Sleep the configured latency (plus jitter) for one request."""
        base, jitter = self._state["latency_ms"], self._state["jitter_ms"]
        if base or jitter:
            with self._lock:
                extra = self._rng.uniform(0, jitter) if jitter else 0.0
            time.sleep((base + extra) / 1000.0)

    def injected_error(self) -> int | None:
        """An HTTP status to fail this request with, or None to serve it."""
        rate = self._state["error_rate"]
        if rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= rate:
                return None
            return self._rng.choice(self._state["error_codes"])
