"""tools/run-suite.py: steps in order, ``+`` steps beside the one before, every failure reported."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "run-suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("run_suite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def step(name: str, code: str) -> str:
    return f"{name}={sys.executable} -c {code!r}"


def test_plus_steps_join_the_step_before(suite):
    groups = suite.parse(["a=true", "b=true", "+c=false", "d=true"])
    assert [[entry[0] for entry in group] for group in groups] == [["a"], ["b", "c"], ["d"]]


@pytest.mark.parametrize("argv", [["+a=true"], ["a"], ["a="], ["=true"], ["+=true"]])
def test_malformed_steps_are_refused(suite, argv):
    with pytest.raises(SystemExit, match="run-suite"):
        suite.parse(argv)


def test_side_by_side_steps_overlap_prefix_their_output_and_report_failures(suite, capsys):
    started = time.monotonic()
    rc = suite.main([
        step("first", "print('alone')"),
        step("slow", "import time; time.sleep(2.5); print('slow done')"),
        step("+fails", "import time, sys; time.sleep(1.5); print('fails done'); sys.exit(3)"),
    ])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert rc == 1
    assert elapsed < 3.9, f"the 2.5 s and 1.5 s steps did not run side by side ({elapsed:.1f} s)"
    assert "[slow] slow done" in out and "[fails] fails done" in out
    assert "FAIL  fails" in out and "PASS  slow" in out and "PASS  first" in out
    # each step's own time, not the group's: the one that fails ends a second before the other
    times = {line.split()[1]: float(line.split()[2].rstrip("s")) for line in out.splitlines()
             if line.strip().startswith(("PASS", "FAIL"))}
    assert times["fails"] < times["slow"] - 0.5, times
