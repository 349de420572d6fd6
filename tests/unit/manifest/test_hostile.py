"""The hostile manifests of hostile/: each refused before any change, naming the field or the line.

Every file starts with ``# class: <what it attacks>`` and ``# expect: <text the refusal
must hold>``. Each is read and checked the way hpc.vcluster.vcluster_manifest does it
(read_manifest, then check_manifest with the site's default policy and this collection's
roles), under a 5 s watchdog: a refusal that takes longer (an alias bomb being copied)
fails the test instead of hanging it. The bench (tools/bench-manifest.py) reports how
long they take.
"""
from __future__ import annotations

import re
import signal
import traceback
from contextlib import contextmanager
from pathlib import Path

import pytest

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import check_manifest, read_manifest
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import ManifestError

import hostile_generated

HERE = Path(__file__).resolve().parent
HOSTILE = sorted((HERE / "hostile").glob("*.manifest"))
CASES = [p.stem for p in HOSTILE] + sorted(hostile_generated.GENERATED)
#: The classes of the issue ("The manifest is the trust boundary") and this suite's own.
ISSUE_CLASSES = {"duplicate keys", "zero nodes", "reserved PKey", "storage path", "storage metacharacters",
                 "external source", "Ansible variables", "config file injection", "role rules", "kernel command line",
                 "deep nesting", "encoding", "alias expansion", "secrets", "Jinja"}
#: A refusal message starts with a field path, a position in the file, or (top level).
FIELD_OR_LINE = re.compile(r"^(\S+: line \d+, column \d+: |\S+: more than \d+ (bytes|characters); |\(top level\): |"
                           r"[a-z_][A-Za-z0-9_]*(\[\d+\]|\.[A-Za-z0-9_-]+)*( \(key .*\))?: )")


def header(path: Path) -> tuple[str, str]:
    lines = path.read_bytes().split(b"\n", 2)
    cls = lines[0].decode().split(":", 1)[1].strip()
    expect = lines[1].decode().split(":", 1)[1].strip()
    return cls, expect


@contextmanager
def watchdog(seconds: int):
    def expired(signum, frame):
        raise TimeoutError("no answer in %d s" % seconds)
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refusal(path: Path) -> list[str]:
    """The errors of a manifest file, read and checked as the action plugin does; [] if accepted."""
    try:
        data, source, base_dir = read_manifest(str(path))
        check_manifest(data, source, base_dir, fetch=False)
    except ManifestError as exc:
        return exc.errors
    return []


@pytest.mark.parametrize("name", CASES)
def test_hostile_manifest_is_refused_with_the_field_named(name, tmp_path):
    path = HERE / "hostile" / (name + ".manifest")
    if name in hostile_generated.GENERATED:
        path = hostile_generated.write(name, tmp_path)
    cls, expect = header(path)
    try:
        with watchdog(5):
            errors = refusal(path)
    except ManifestError:
        raise
    except Exception:  # any other exception is a traceback the user would see
        pytest.fail("%s (%s) raised instead of refusing:\n%s" % (path.name, cls, traceback.format_exc()))
    assert errors, "%s (%s) was accepted" % (path.name, cls)
    assert any(expect in error for error in errors), "%s (%s): %r not in %s" % (path.name, cls, expect, errors)
    for error in errors:
        shown = error.split(str(path) + ": ", 1)[-1] if str(path) in error else error
        assert FIELD_OR_LINE.match(error) or FIELD_OR_LINE.match(shown), error
        assert len(error) < 800, "message too long (%d): %s" % (len(error), error[:200])


def test_every_class_of_the_issue_has_hostile_manifests():
    classes = {header(p)[0] for p in HOSTILE} | {cls for cls, _e, _b in hostile_generated.GENERATED.values()}
    assert ISSUE_CLASSES <= classes, ISSUE_CLASSES - classes
    assert len(CASES) >= 100
