"""Serialise the test suites' use of the lab networks and reclaim labs whose tests died.

Podman lets one network on the machine hold 10.252.0.0/16 (the NMN), so only one lab can
run in it at a time; a second site on the same machine takes another range of
``inventory_data.SITE_NETWORKS`` (:data:`SECOND_SITE` in the tests). Test labs use the
prefixes in :data:`TEST_PREFIXES` and hold the lock file below for their whole life, one
lock for every range: a test lab found holding a range while we hold the lock was left by
a test run that was killed before its teardown (a CI job cancelled, a machine restarted),
and is removed. Any other lab is somebody's (``make demo``'s, say): we wait for it a
little, then fail with a message that says how to take it down.

The claim is re-entrant within a process: a test session that holds it for its first
site claims the second site's range under the same lock (a second ``flock`` on the same
file would wait for itself), and the lock is released when the last claim ends.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .inventory_data import MGMT_NETWORK, SITE_NETWORKS
from .nodes.podman import holder_prefix, holder_text, remove_lab, subnet_holder

#: Prefixes only the test suites use (tests/lab and tests/integration).
TEST_PREFIXES = ("vclabt", "vcmt")
LOCK = Path(tempfile.gettempdir()) / "vcluster-lab-nmn.lock"
NMN = ipaddress.ip_network(MGMT_NETWORK)
#: The range of the tests' second site (tests/integration: the fleet test).
SECOND_SITE = ipaddress.ip_network(SITE_NETWORKS[1])
#: Every range a test lab may hold; `make test`'s pre-flight checks them all.
TEST_RANGES = (NMN, SECOND_SITE)

_held = {"count": 0, "file": None}
_guard = threading.RLock()


def nmn_holder(network: ipaddress.IPv4Network = NMN) -> dict | None:
    """The ``podman network ls`` row of the network that holds ``network`` (the NMN), if any."""
    return subnet_holder(network)


@contextmanager
def _lock():
    """The machine-wide lock, taken once per process however deep the claims nest."""
    with _guard:
        if _held["count"] == 0:
            handle = open(LOCK, "w", encoding="utf-8")  # pylint: disable=consider-using-with
            fcntl.flock(handle, fcntl.LOCK_EX)
            _held["file"] = handle
        _held["count"] += 1
    try:
        yield
    finally:
        with _guard:
            _held["count"] -= 1
            if _held["count"] == 0:
                _held["file"].close()  # closing releases the flock
                _held["file"] = None


def claims_held() -> int:
    """How many claims this process holds (the lock is held while it is not 0)."""
    return _held["count"]


def orphaned_test_lab(net: dict) -> str:
    """The prefix of a test lab that holds the range ('' when it is no test's)."""
    prefix = holder_prefix(net)
    return prefix if prefix.startswith(TEST_PREFIXES) else ""


@contextmanager
def claim_nmn(wait: float | None = None, network: ipaddress.IPv4Network | str = NMN):
    """Hold ``network`` (the NMN) for a test lab: lock, reclaim orphaned test labs, wait for others."""
    if wait is None:
        wait = float(os.environ.get("VCLUSTER_TEST_NMN_WAIT", "120"))
    network = ipaddress.ip_network(network)
    with _lock():
        deadline = time.monotonic() + wait
        while (holder := nmn_holder(network)) is not None:
            if prefix := orphaned_test_lab(holder):
                removed = remove_lab(prefix)
                print(f"reclaimed {network} from test lab {prefix}, left by a killed test run: "
                      f"{removed}", file=sys.stderr)
                if nmn_holder(network) == holder:
                    raise RuntimeError(f"could not remove orphaned test lab {prefix}: {removed}")
                continue
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the test lab needs the range {network}, held by "
                                   f"{holder_text(holder)}; waited {wait:.0f} s")
            time.sleep(5)
        yield


def main() -> int:
    """``python -m vcluster_lab.nmn_claim``: `make test`'s pre-flight, fails at once when a
    lab that is not a test's holds the NMN (instead of each lab test waiting for it)."""
    for network in TEST_RANGES:
        holder = nmn_holder(network)
        if holder is None or orphaned_test_lab(holder):
            continue
        print(f"make test: the test labs need the range {network}, held by {holder_text(holder)}. "
              "`make demo` leaves its lab up for you to explore: `make demo-down` takes it down.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
