"""Benchmark of the SMD inventory plugins at scale (``make bench-inventory``); prints figures, checks the bars.

A records-only lab (``vcluster-lab up --records`` then ``seed --nodes N --groups G``) in a temporary home, on a
free port, with its own prefix. Then, in the same run and interleaved (so a busy machine slows all of them alike):

* ``ansible-inventory --list`` with hpc.vcluster.<face>, fetching from the lab;
* the same command on a static YAML inventory holding the same hosts, groups and variables (written by
  ``ansible-inventory --list --export --yaml`` from the plugin, and checked equal to it);
* the plugin again with the ansible.builtin.jsonfile cache warm (no request at all).

Bars (docs/inventory.md): at most 4 HTTP requests whatever the node count, plugin time at most 0.5x the static
YAML time, warm cache at most 0.35x. The exit status is 1 when a bar is missed. This is a benchmark that prints
ratios measured in one run, not a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_lab import BIN, ROOT, Lab

BARS = {"requests": 4, "plugin": 0.5, "cache": 0.35}


class Run:
    """One ansible-inventory run: wall-clock seconds, stdout (the JSON or YAML listing) and stderr (-vvv lines)."""

    def __init__(self, seconds: float, stdout: str, stderr: str):
        self.seconds, self.stdout, self.stderr = seconds, stdout, stderr


def run_inventory(source: Path, env: dict, *extra: str) -> Run:
    cmd = [str(BIN / "ansible-inventory"), "-i", str(source), "--list", "-vvv", *extra]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit("ansible-inventory -i %s failed:\n%s" % (source, done.stderr[-3000:]))
    return Run(seconds, done.stdout, done.stderr)


def requests_of(stderr: str) -> int:
    found = re.findall(r"(\d+) HTTP requests in all", stderr)
    if not found:
        raise SystemExit("the plugin printed no request count at -vvv:\n" + stderr[-2000:])
    return int(found[-1])


def normalised(listing: str) -> dict:
    """An ansible-inventory --list reply with order and 2.19 trust markers removed, for comparing sources."""
    def plain(value):
        if isinstance(value, dict):
            if set(value) == {"__ansible_unsafe"}:
                return value["__ansible_unsafe"]
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value
    data = plain(json.loads(listing))
    for name, group in data.items():
        if name != "_meta":
            for key in ("hosts", "children"):
                if key in group:
                    group[key] = sorted(group[key])
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each kind (median reported)")
    parser.add_argument("--face", choices=("openchami", "csm"), default="openchami", help="face for the timed runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (sources, static YAML)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="vcluster-bench-inventory-"))
    lab = Lab(work / "lab")
    failures = []
    try:
        started = time.perf_counter()
        print(lab.start(args.nodes, args.groups))
        print("lab: records driver on port %d, %d nodes and %d labels seeded in %.1f s" % (
            lab.port, args.nodes, args.groups, time.perf_counter() - started))
        base = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_VERBOSE_TO_STDERR="1",
                    ANSIBLE_INVENTORY_UNPARSED_FAILED="1", ANSIBLE_DEPRECATION_WARNINGS="0")
        plugin = {face: "hpc.vcluster.%s" % face for face in ("openchami", "csm")}
        envs = {face: dict(base, **lab.client_env(face)) for face in ("openchami", "csm")}

        # Request counts of both faces (cold, no cache): Keycloak adds one on CSM.
        counts = {}
        for face in ("openchami", "csm"):
            source = work / ("count.%s.yml" % face)
            source.write_text("plugin: %s\n" % plugin[face])
            counts[face] = requests_of(run_inventory(source, envs[face]).stderr)

        env = envs[args.face]
        source = work / ("bench.%s.yml" % args.face)
        source.write_text("plugin: %s\n" % plugin[args.face])
        cached = work / ("cached.%s.yml" % args.face)
        cached.write_text("plugin: %s\ncache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n"
                          "cache_timeout: 3600\n" % (plugin[args.face], work / "cache"))
        static = work / "static.yml"
        static.write_text(run_inventory(source, env, "--export", "--yaml").stdout)
        reference = normalised(run_inventory(source, env).stdout)
        if reference != normalised(run_inventory(static, env).stdout):
            failures.append("the static YAML inventory does not list the same hosts, groups and variables")
        hosts = len(reference["_meta"]["hostvars"])
        groups = len([g for g in reference if g not in ("_meta", "all", "ungrouped")])
        sample = next(iter(reference["_meta"]["hostvars"].values()))
        if requests_of(run_inventory(cached, env).stderr) == 0:      # this run fills the cache
            failures.append("the first cached run made no request: the cache was not empty")

        times = {"plugin": [], "static": [], "cache": []}
        cache_requests = []
        for _round in range(args.repeat):
            times["plugin"].append(run_inventory(source, env).seconds)
            times["static"].append(run_inventory(static, env).seconds)
            warm = run_inventory(cached, env)
            times["cache"].append(warm.seconds)
            cache_requests.append(requests_of(warm.stderr))
            if "from the cache" not in warm.stderr:
                failures.append("a warm run did not read the cache")

        med = {kind: statistics.median(values) for kind, values in times.items()}
        ratio = {kind: med[kind] / med["static"] for kind in ("plugin", "cache")}
        verdict = {
            "requests": max(counts.values()) <= BARS["requests"],
            "plugin": ratio["plugin"] <= BARS["plugin"],
            "cache": ratio["cache"] <= BARS["cache"] and max(cache_requests) == 0,
        }
        print()
        print("hpc.vcluster inventory benchmark (ansible-inventory --list, %s face, median of %d runs each)" % (
            args.face, args.repeat))
        print("  inventory: %d hosts, %d groups, %d host variables each; static YAML %.1f MB" % (
            hosts, groups, len(sample), static.stat().st_size / 1e6))
        print("  HTTP requests per run: openchami %d, csm %d (Keycloak token included); warm cache %d   bar <= %d   %s" % (
            counts["openchami"], counts["csm"], max(cache_requests), BARS["requests"], "PASS" if verdict["requests"] else "FAIL"))
        print("  static YAML  %6.2f s   runs %s" % (med["static"], " ".join("%.2f" % t for t in times["static"])))
        print("  plugin       %6.2f s   runs %s   ratio %.2f   bar <= %.2f   %s" % (
            med["plugin"], " ".join("%.2f" % t for t in times["plugin"]), ratio["plugin"], BARS["plugin"],
            "PASS" if verdict["plugin"] else "FAIL"))
        print("  warm cache   %6.2f s   runs %s   ratio %.2f   bar <= %.2f   %s" % (
            med["cache"], " ".join("%.2f" % t for t in times["cache"]), ratio["cache"], BARS["cache"],
            "PASS" if verdict["cache"] else "FAIL"))
        failures += ["bar missed: %s" % kind for kind, ok in verdict.items() if not ok]
    finally:
        lab.stop()
        if args.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        print("FAIL: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
