"""tools/run-suite.py: groups of lanes side by side, steps of a lane in order, every failure reported."""
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


def summary(out: str) -> dict[str, tuple[str, float, float]]:
    """Each step's PASS/FAIL, wall and CPU seconds, from the summary lines."""
    rows = {}
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] in ("PASS", "FAIL"):
            rows[fields[1]] = (fields[0], float(fields[2].rstrip("s")), float(fields[4].rstrip("s")))
    return rows


def test_plus_starts_a_lane_and_gt_continues_it(suite):
    groups = suite.parse(["a=true", "b=true", "+c=false", ">d=true", "+e=true", "f=true"])
    names = [[[entry[0] for entry in lane] for lane in group] for group in groups]
    assert names == [[["a"]], [["b"], ["c", "d"], ["e"]], [["f"]]]


@pytest.mark.parametrize("argv", [["+a=true"], [">a=true"], ["a"], ["a="], ["=true"], ["+=true"], [">=true"]])
def test_malformed_steps_are_refused(suite, argv):
    with pytest.raises(SystemExit, match="run-suite"):
        suite.parse(argv)


def test_lanes_overlap_prefix_their_output_and_report_failures(suite, capsys):
    started = time.monotonic()
    rc = suite.main([
        step("first", "print('alone')"),
        step("slow", "import time; time.sleep(2.5); print('slow done')"),
        step("+fails", "import time, sys; time.sleep(1.0); print('fails done'); sys.exit(3)"),
        step(">after", "import time; time.sleep(1.0); print('after done')"),
    ])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert rc == 1
    assert elapsed < 3.9, f"the 2.5 s lane and the 1 s + 1 s lane did not run side by side ({elapsed:.1f} s)"
    assert "[slow] slow done" in out and "[fails] fails done" in out and "[after] after done" in out
    # the lane goes on after a failed step, and only after it
    assert out.index("[fails] fails done") < out.index("[after] after done")
    rows = summary(out)
    assert rows["fails"][0] == "FAIL" and rows["slow"][0] == rows["first"][0] == rows["after"][0] == "PASS"
    # each step's own time, not the group's
    assert rows["fails"][1] < rows["slow"][1] - 0.5, rows


def test_cpu_time_is_the_steps_own(suite, capsys):
    rc = suite.main([
        step("sleeps", "import time; time.sleep(1.2)"),
        # busy for one second of CPU (iter(int, 1) never ends on its own)
        step("+burns", "import time; end = time.process_time() + 1.0; any(time.process_time() >= end for _ in iter(int, 1))"),
    ])
    rows = summary(capsys.readouterr().out)
    assert rc == 0
    assert rows["burns"][2] >= 0.9, rows
    assert rows["sleeps"][2] < 0.5, rows
