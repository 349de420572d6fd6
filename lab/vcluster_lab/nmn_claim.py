"""Serialise the test suites' use of the NMN range and reclaim labs whose tests died.

Podman lets one network on the machine hold 10.252.0.0/16, so only one lab can run at
a time. Test labs use the prefixes in :data:`TEST_PREFIXES` and hold the lock file below
for their whole life: a test lab found holding the range while we hold the lock was
left by a test run that was killed before its teardown (a CI job cancelled, a machine
restarted), and is removed. Any other lab is somebody's (``make demo``'s, say): we wait
for it a little, then fail with a message that says how to take it down.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .inventory_data import MGMT_NETWORK
from .nodes.podman import holder_prefix, holder_text, remove_lab, subnet_holder

#: Prefixes only the test suites use (tests/lab and tests/integration).
TEST_PREFIXES = ("vclabt", "vcmt")
LOCK = Path(tempfile.gettempdir()) / "vcluster-lab-nmn.lock"
NMN = ipaddress.ip_network(MGMT_NETWORK)


def nmn_holder() -> dict | None:
    """The ``podman network ls`` row of the network that holds the NMN range, if any."""
    return subnet_holder(NMN)


def orphaned_test_lab(net: dict) -> str:
    """The prefix of a test lab that holds the range ('' when it is no test's)."""
    prefix = holder_prefix(net)
    return prefix if prefix.startswith(TEST_PREFIXES) else ""


@contextmanager
def claim_nmn(wait: float | None = None):
    """Hold the NMN for a test lab: lock, reclaim orphaned test labs, wait for others."""
    if wait is None:
        wait = float(os.environ.get("VCLUSTER_TEST_NMN_WAIT", "120"))
    with open(LOCK, "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deadline = time.monotonic() + wait
        while (holder := nmn_holder()) is not None:
            if prefix := orphaned_test_lab(holder):
                removed = remove_lab(prefix)
                print(f"reclaimed the NMN from test lab {prefix}, left by a killed test run: "
                      f"{removed}", file=sys.stderr)
                if nmn_holder() == holder:
                    raise RuntimeError(f"could not remove orphaned test lab {prefix}: {removed}")
                continue
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the test lab needs the NMN range {NMN}, held by "
                                   f"{holder_text(holder)}; waited {wait:.0f} s")
            time.sleep(5)
        yield


def main() -> int:
    """``python -m vcluster_lab.nmn_claim``: `make test`'s pre-flight, fails at once when a
    lab that is not a test's holds the NMN (instead of each lab test waiting for it)."""
    holder = nmn_holder()
    if holder is None or orphaned_test_lab(holder):
        return 0
    print(f"make test: the test labs need the NMN range {NMN}, held by {holder_text(holder)}. "
          "`make demo` leaves its lab up for you to explore: `make demo-down` takes it down.",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
