"""Benchmark of the manifest checker against hostile input (``make bench-manifest``); prints figures, checks the bar.

Every manifest of tests/unit/manifest/hostile (plus the generated ones: not UTF-8, a 1 MB
kernel command line, a file at the size bound) is read and checked as hpc.vcluster.vcluster_manifest does it
(read_manifest, check_manifest), three times, interleaved with the same for the demo
manifest (examples/vclusters/demo.yml), the baseline, so a busy machine slows both alike.
Prints per class the slowest refusal in milliseconds and as a ratio to the baseline, and
the slowest of all. Bar (docs/manifest.md): every refusal under 5 s, the issue's limit; the
exit status is 1 when it is missed or a hostile manifest is accepted. A benchmark that
prints ratios measured in one run, not a timed test.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".collections"))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "manifest"))

import hostile_generated  # noqa: E402

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import (  # noqa: E402
    check_manifest, read_manifest)
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import ManifestError  # noqa: E402

HOSTILE = ROOT / "tests" / "unit" / "manifest" / "hostile"
BASELINE = ROOT / "examples" / "vclusters" / "demo.yml"
BAR_SECONDS = 5.0
ROUNDS = 3


def check(path: Path) -> tuple[float, bool]:
    start = time.perf_counter()
    try:
        data, source, base_dir = read_manifest(str(path))
        check_manifest(data, source, base_dir, fetch=False)
        refused = False
    except ManifestError:
        refused = True
    return time.perf_counter() - start, refused


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        generated = [hostile_generated.write(name, Path(tmp)) for name in sorted(hostile_generated.GENERATED)]
        cases = sorted(HOSTILE.glob("*.manifest")) + generated
        times = {path: [] for path in cases}
        baseline = []
        accepted = []
        for _round in range(ROUNDS):
            for path in cases:
                baseline.append(check(BASELINE)[0])
                seconds, refused = check(path)
                times[path].append(seconds)
                if not refused:
                    accepted.append(path.name)
        base = statistics.median(baseline)
        classes = {}
        for path, values in times.items():
            cls = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace").split(":", 1)[-1].strip()
            worst = max(values)
            if worst > classes.get(cls, (0, None))[0]:
                classes[cls] = (worst, path.name)
    print("baseline: checking %s takes %.1f ms (median of %d)" % (BASELINE.name, base * 1000, len(baseline)))
    print("%-26s %10s %8s  %s" % ("class", "slowest ms", "ratio", "manifest"))
    for cls, (worst, name) in sorted(classes.items(), key=lambda item: -item[1][0]):
        print("%-26s %10.1f %7.1fx  %s" % (cls, worst * 1000, worst / base, name))
    slowest = max(max(v) for v in times.values())
    print("%d hostile manifests in %d classes, %d rounds; slowest refusal %.3f s (%.1fx the baseline); bar %.0f s"
          % (len(cases), len(classes), ROUNDS, slowest, slowest / base, BAR_SECONDS))
    if accepted:
        print("ACCEPTED (must be refused): %s" % ", ".join(sorted(set(accepted))))
    return 1 if accepted or slowest >= BAR_SECONDS else 0


if __name__ == "__main__":
    sys.exit(main())
