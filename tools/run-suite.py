"""Run the named steps of `make test` and report each.

Steps run one after the other, except a step whose name starts with ``+``: it runs beside the
step before it (both must end before the next step starts). ``make test`` runs the Molecule
scenarios beside the integration tests: neither uses the other's containers or networks, and
each leaves a core idle most of the time (the integration tests' own processes used 58 % of one
core), so side by side they take about as long as the longer of the two. The output of steps
that run side by side is prefixed with the step's name.

Every step runs even when an earlier one failed, so one CI run shows all failures; the exit
status is non-zero when any step failed.  Usage: run-suite.py NAME=COMMAND [+NAME=COMMAND] ...
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import threading
import time


def parse(argv: list[str]) -> list[list[tuple[str, str]]]:
    """The steps in groups: a group is a step and the ``+`` steps after it."""
    groups: list[list[tuple[str, str]]] = []
    for spec in argv:
        name, sep, command = spec.partition("=")
        if not sep or not command or name in ("", "+"):
            raise SystemExit(f"run-suite: {spec!r} is not NAME=COMMAND")
        if name.startswith("+"):
            if not groups:
                raise SystemExit(f"run-suite: {name} has no step before it to run beside")
            groups[-1].append((name[1:], command))
        else:
            groups.append([(name, command)])
    return groups


def _pump(name: str, proc: subprocess.Popen, lock: threading.Lock, started: dict, ended: dict) -> None:
    """Copy the step's output, each line prefixed, and note when the step ended."""
    assert proc.stdout is not None
    for line in proc.stdout:
        with lock:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()
    proc.wait()
    ended[name] = time.monotonic()
    with lock:
        print(f"##### {name}: {'passed' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'} "
              f"in {ended[name] - started[name]:.0f} s", flush=True)


def run_group(group: list[tuple[str, str]]) -> list[tuple[str, int, float]]:
    """Run the steps of one group; alone, a step's output passes through untouched."""
    if len(group) == 1:
        name, command = group[0]
        t0 = time.monotonic()
        print(f"\n##### {name}: {command}", flush=True)
        rc = subprocess.call(shlex.split(command))
        return [(name, rc, time.monotonic() - t0)]
    lock = threading.Lock()
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    running = []
    for name, command in group:
        print(f"\n##### {name} (side by side with {', '.join(other for other, _command in group if other != name)}): {command}",
              flush=True)
        proc = subprocess.Popen(shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", bufsize=1)
        started[name] = time.monotonic()
        pump = threading.Thread(target=_pump, args=(name, proc, lock, started, ended), daemon=True)
        pump.start()
        running.append((name, proc, pump))
    results = []
    for name, proc, pump in running:
        pump.join()
        results.append((name, proc.returncode, ended[name] - started[name]))
    return results


def main(argv: list[str]) -> int:
    groups = parse(argv)
    results = []
    started = time.monotonic()
    for group in groups:
        results.extend(run_group(group))
    print("\n##### summary")
    for name, rc, secs in results:
        print(f"  {'PASS' if rc == 0 else 'FAIL'}  {name:<16} {secs:7.1f}s")
    print(f"  total {time.monotonic() - started:.1f}s")
    return 1 if any(result[1] for result in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
