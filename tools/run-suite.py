"""Run the named steps of `make test` and report each, with its wall time and CPU time.

A group of steps runs in lanes side by side; the steps of one lane run one after the other.

* ``NAME=COMMAND`` starts a new group (after every lane of the group before has ended);
* ``+NAME=COMMAND`` starts another lane in the current group, beside the others;
* ``>NAME=COMMAND`` runs after the step before it in the same lane.

``make test`` runs three lanes: the static checks (lint, unit, build, sanity: CPU, no lab), the
lab (contract, fresh root, integration: the lab lock, mostly waiting on nodes) and the Molecule
scenarios (their own containers and networks), because the two cores are idle much of the time
that the lab and the scenarios wait on containers. Output of a step that runs beside others is
prefixed with the step's name.

Each step's CPU time (user + system of the step's processes that it waited for; the lab's
node containers are not its children and are not counted) is printed beside its wall time, so
a slow run says whether a step worked more or waited more.

Every step runs even when an earlier one failed, so one CI run shows all failures; the exit
status is non-zero when any step failed.  Usage: run-suite.py NAME=COMMAND [+NAME=COMMAND] [>NAME=COMMAND] ...
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time

Step = tuple[str, str]
#: a group is a list of lanes; a lane a list of steps run one after the other
Group = list[list[Step]]


def parse(argv: list[str]) -> list[Group]:
    """The steps in groups of lanes."""
    groups: list[Group] = []
    for spec in argv:
        name, sep, command = spec.partition("=")
        if not sep or not command or name in ("", "+", ">"):
            raise SystemExit(f"run-suite: {spec!r} is not NAME=COMMAND")
        if name[0] in "+>":
            if not groups:
                raise SystemExit(f"run-suite: {name} has no step before it to run beside or after")
            if name[0] == "+":
                groups[-1].append([(name[1:], command)])
            else:
                groups[-1][-1].append((name[1:], command))
        else:
            groups.append([[(name, command)]])
    return groups


class Runner:
    """Runs one group's lanes and keeps each step's result: name, exit status, wall and CPU seconds."""

    def __init__(self, group: Group):
        self.group = group
        self.prefix = len(group) > 1
        self.lock = threading.Lock()
        self.results: list[tuple[str, int, float, float]] = []

    def say(self, text: str) -> None:
        with self.lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def step(self, name: str, command: str) -> None:
        beside = ", ".join(step[0] for lane in self.group for step in lane if step[0] != name)
        self.say(f"\n##### {name}{f' (in a group with {beside})' if self.prefix else ''}: {command}\n")
        started = time.monotonic()
        if self.prefix:
            proc = subprocess.Popen(shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace", bufsize=1)
            assert proc.stdout is not None
            for line in proc.stdout:
                self.say(f"[{name}] {line}")
        else:
            proc = subprocess.Popen(shlex.split(command))
        # wait4: the CPU time of this step's process tree alone (others run beside it)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall, cpu = time.monotonic() - started, usage.ru_utime + usage.ru_stime
        self.say(f"##### {name}: {'passed' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'} "
                 f"in {wall:.0f} s (cpu {cpu:.0f} s)\n")
        with self.lock:
            self.results.append((name, proc.returncode, wall, cpu))

    def lane(self, steps: list[Step]) -> None:
        for name, command in steps:
            self.step(name, command)

    def run(self) -> list[tuple[str, int, float, float]]:
        if len(self.group) == 1:
            self.lane(self.group[0])
        else:
            threads = [threading.Thread(target=self.lane, args=(lane,), daemon=True) for lane in self.group]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        order = [step[0] for lane in self.group for step in lane]
        return sorted(self.results, key=lambda result: order.index(result[0]))


def main(argv: list[str]) -> int:
    groups = parse(argv)
    results = []
    started = time.monotonic()
    for group in groups:
        results.extend(Runner(group).run())
    print("\n##### summary")
    for name, rc, wall, cpu in results:
        print(f"  {'PASS' if rc == 0 else 'FAIL'}  {name:<16} {wall:7.1f}s  cpu {cpu:7.1f}s")
    print(f"  total {time.monotonic() - started:.1f}s")
    return 1 if any(result[1] for result in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
