"""Run the named steps of `make test` one after the other and report each.

Every step runs even when an earlier one failed, so one CI run shows all failures;
the exit status is non-zero when any step failed.  Usage: run-suite.py NAME=COMMAND...
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    results = []
    started = time.monotonic()
    for spec in argv:
        name, command = spec.split("=", 1)
        t0 = time.monotonic()
        print(f"\n##### {name}: {command}", flush=True)
        rc = subprocess.call(shlex.split(command))
        results.append((name, rc, time.monotonic() - t0))
    print("\n##### summary")
    for name, rc, secs in results:
        print(f"  {'PASS' if rc == 0 else 'FAIL'}  {name:<14} {secs:7.1f}s")
    print(f"  total {time.monotonic() - started:.1f}s")
    return 1 if any(result[1] for result in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
