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
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .containers import PREFIX_LABEL, podman_json
from .inventory_data import MGMT_NETWORK

#: Prefixes only the test suites use (tests/lab and tests/integration).
TEST_PREFIXES = ("vclabt", "vcmt")
LOCK = Path(tempfile.gettempdir()) / "vcluster-lab-nmn.lock"


def nmn_holder() -> tuple[str, str] | None:
    """(network name, lab prefix or '') of the podman network that holds the NMN range."""
    for row in podman_json("network", "ls", "--format", "json", what="podman networks") or []:
        if any(sub.get("subnet") == MGMT_NETWORK for sub in row.get("subnets") or []):
            return row.get("name", ""), (row.get("labels") or {}).get(PREFIX_LABEL, "")
    return None


@contextmanager
def claim_nmn(wait: float | None = None):
    """Hold the NMN for a test lab: lock, reclaim orphaned test labs, wait for others."""
    from .nodes.podman import remove_lab
    if wait is None:
        wait = float(os.environ.get("VCLUSTER_TEST_NMN_WAIT", "120"))
    with open(LOCK, "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deadline = time.monotonic() + wait
        while (holder := nmn_holder()) is not None:
            network, prefix = holder
            if prefix.startswith(TEST_PREFIXES):
                removed = remove_lab(prefix)
                print(f"reclaimed the NMN from test lab {prefix}, left by a killed test run: "
                      f"{removed}", file=sys.stderr)
                if nmn_holder() == holder:
                    raise RuntimeError(f"could not remove orphaned test lab {prefix}: {removed}")
                continue
            if time.monotonic() >= deadline:
                who = f"lab {prefix}" if prefix else "a network this project did not make"
                hint = (f"'VCLUSTER_LAB_PREFIX={prefix} vcluster-lab down' if it is yours"
                        if prefix else f"'podman network rm {network}'")
                raise RuntimeError(
                    f"podman network {network} ({who}) holds the NMN range {MGMT_NETWORK}, which "
                    f"the test lab needs; waited {wait:.0f} s. Take it down ({hint}) and rerun.")
            time.sleep(5)
        yield


def main() -> int:
    """``python -m vcluster_lab.nmn_claim``: `make test`'s pre-flight, fails at once when a
    lab that is not a test's holds the NMN (instead of each lab test waiting for it)."""
    holder = nmn_holder()
    if holder is None or holder[1].startswith(TEST_PREFIXES):
        return 0
    network, prefix = holder
    print(f"make test: podman network {network} (lab {prefix or '?'}) holds the NMN range "
          f"{MGMT_NETWORK}, which the test labs need. `make demo` leaves its lab up for you to "
          "explore: take it down with `make demo-down` (or `VCLUSTER_LAB_PREFIX="
          f"{prefix or '...'} .venv/bin/vcluster-lab down`), then run `make test` again.",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
