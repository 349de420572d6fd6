"""Benchmark of the SMD inventory plugins at scale (``make bench-inventory``); prints figures, checks the bars.

A records-only lab (``vcluster-lab up --records`` then ``seed --nodes N --groups G``) in a temporary home, on a
free port, with its own prefix. Three inventory sources over the same site:

* **ours**: hpc.vcluster.<face>, fetching from the lab;
* **baseline**: ``smd_baseline``, a minimal peer-style plugin written below (BASELINE_PLUGIN), the lower bound of
  this kind of plugin: the two requests OpenCHAMI's ansible-smd-inventory makes (components, memberships), one
  host per node, one host variable per host (the component as SMD returns it), a group per label and partition,
  the public inventory API and nothing else;
* **static**: a static YAML inventory holding our hosts, groups and variables (``ansible-inventory --list
  --export --yaml`` of ours, checked to list the same).

Three workloads on each: ``ansible-inventory --list``, ``ansible-inventory --graph`` and ``ansible-playbook`` of a
play that only loads the inventory (``hosts: all``, no facts, no tasks). Ours and the baseline run ``--repeat``
rounds, interleaved (so a busy machine slows both alike), medians reported; the static inventory, slow to parse,
``--static-repeat`` rounds. Then ours again with the ansible.builtin.jsonfile cache warm (no request at all).

Each run is timed twice: wall-clock, and CPU (user + system of the command, from getrusage). Both are printed;
the bars apply to the CPU medians, because on a shared 2-core machine a command's wall time is mostly how long it
waited for a core (at a load average of 20, eight times its CPU time) while its CPU time is what it cost.

Bars (docs/inventory.md): at most 3 HTTP requests on OpenCHAMI (4 on CSM, with the Keycloak token) whatever the node
count; ours at most 1.0x the baseline on ``--graph`` and on the playbook, 1.1x on ``--list`` (its output is
larger); ours at most 0.5x the static YAML on ``--list``; a warm cache makes no request. Exit status 1 when a bar
is missed. This is a benchmark that prints ratios measured in one run, not a timed test.
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_lab import BIN, Lab, ansible_env, exit_on_sigterm

BARS = {"requests": {"openchami": 3, "csm": 4}, "graph": 1.0, "play": 1.0, "list": 1.1, "static": 0.5}
WORKLOADS = ("list", "graph", "play")

BASELINE_PLUGIN = '''\
"""The lower bound of an SMD inventory plugin, peer-style (as OpenCHAMI's ansible-smd-inventory does it).

Two requests (components, memberships), one host per node named nid%06d, one host variable per host (the
component as SMD returns it), a group per label (grp_<label>) and per partition (prt_<name>). The public
inventory API only, no checks, no cache: what the simplest plugin of this kind costs.
"""
from __future__ import annotations

import os

import requests

from ansible.plugins.inventory import BaseInventoryPlugin

DOCUMENTATION = r"""
name: smd_baseline
short_description: minimal SMD inventory (benchmark baseline)
description: [Components and memberships from SMD; one variable per host.]
options:
  plugin: {description: the plugin name, required: true, choices: [smd_baseline]}
"""


class InventoryModule(BaseInventoryPlugin):
    NAME = "smd_baseline"

    def verify_file(self, path):
        return path.endswith(("smd_baseline.yml", "smd_baseline.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        base = os.environ["VCLUSTER_API_URL"].rstrip("/") + "/hsm/v2"
        session = requests.Session()
        session.headers["Authorization"] = "Bearer " + os.environ["SMD_BASELINE_TOKEN"]
        verify = os.environ["VCLUSTER_CA_PATH"]
        components = session.get(base + "/State/Components", params={"type": "Node"}, verify=verify,
                                 timeout=120).json()["Components"]
        memberships = session.get(base + "/memberships", params={"type": "Node"}, verify=verify, timeout=120).json()
        member_of = {m["id"]: m for m in memberships}
        for component in components:
            host = "nid%06d" % component["NID"]
            self.inventory.add_host(host)
            self.inventory.set_variable(host, "smd_component", component)
            membership = member_of.get(component["ID"]) or {}
            for label in membership.get("groupLabels") or []:
                self.inventory.add_child(self.inventory.add_group("grp_" + label), host)
            if membership.get("partitionName"):
                self.inventory.add_child(self.inventory.add_group("prt_" + membership["partitionName"]), host)
'''

PLAY = [{"name": "load the inventory", "hosts": "all", "gather_facts": False, "tasks": []}]


class Run:
    """One ansible-inventory or ansible-playbook run: wall-clock and CPU seconds, stdout and stderr (-vvv lines)."""

    def __init__(self, seconds: float, cpu: float, stdout: str, stderr: str):
        self.seconds, self.cpu, self.stdout, self.stderr = seconds, cpu, stdout, stderr


def run(cmd: list[str], env: dict) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd), (done.stderr or done.stdout)[-3000:]))
    return Run(seconds, cpu, done.stdout, done.stderr)


def run_inventory(source: Path, env: dict, *extra: str) -> Run:
    return run([str(BIN / "ansible-inventory"), "-i", str(source), *extra], env)


# Each source runs with only its own plugin enabled, so none pays for loading another's: ansible-core reads the
# documentation (options and doc fragments) of every enabled plugin at start-up, about 0.1 s of CPU for each of ours.
# Ours and before: the plugin of the face being timed.
ENABLED = {"ours": "hpc.vcluster.{face}", "baseline": "smd_baseline", "static": "yaml", "before": "hpc.vcluster.{face}"}


def for_source(who: str, env: dict, face: str) -> dict:
    return dict(env, ANSIBLE_INVENTORY_ENABLED=ENABLED[who].format(face=face))


def workload(kind: str, source: Path, env: dict, play: Path) -> Run:
    if kind == "play":
        return run([str(BIN / "ansible-playbook"), "-i", str(source), str(play)], env)
    return run_inventory(source, env, "--" + kind)


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


def timing_line(label: str, walls: list[float], cpus: list[float]) -> str:
    return "    %-22s wall %7.2f s  cpu %6.2f s   runs (wall/cpu) %s" % (
        label, statistics.median(walls), statistics.median(cpus),
        " ".join("%.1f/%.1f" % pair for pair in zip(walls, cpus)))


def ratio_line(label: str, walls: list[float], cpus: list[float], base_walls: list[float], base_cpus: list[float],
               limit: float | None) -> tuple[str, bool]:
    wall = statistics.median(walls) / statistics.median(base_walls)
    cpu = statistics.median(cpus) / statistics.median(base_cpus)
    ok = limit is None or cpu <= limit
    # Information, not the bar: the median of the rounds' own CPU ratios. The two runs of a round are back to back,
    # so a change of load between rounds cancels out of it; the spread shows how noisy the machine was.
    paired = sorted(c / b for c, b in zip(cpus, base_cpus))
    text = "    %-22s wall %.2f  cpu %.2f  (per round: median %.2f, %.2f-%.2f)" % (
        label, wall, cpu, statistics.median(paired), paired[0], paired[-1])
    if limit is not None:
        text += "   bar (cpu) <= %.2f   %s" % (limit, "PASS" if ok else "FAIL")
    return text, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of ours and the baseline (median reported)")
    parser.add_argument("--static-repeat", type=int, default=1,
                        help="rounds of the static YAML inventory (0: no static inventory, its export and check skipped)")
    parser.add_argument("--face", choices=("openchami", "csm"), default="openchami", help="face for the timed runs")
    parser.add_argument("--before", metavar="COLLECTIONS_PATH",
                        help="also time the plugin of another checkout (e.g. main's .collections), as 'before'")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (sources, static YAML)")
    args = parser.parse_args(argv)
    exit_on_sigterm()

    work = Path(tempfile.mkdtemp(prefix="vcluster-bench-inventory-"))
    lab = Lab(work / "lab")
    failures = []
    try:
        started = time.perf_counter()
        print(lab.start(args.nodes, args.groups))
        print("lab: records driver on port %d, %d nodes and %d labels seeded in %.1f s" % (
            lab.port, args.nodes, args.groups, time.perf_counter() - started))
        plugins = work / "plugins" / "inventory"
        plugins.mkdir(parents=True)
        (plugins / "smd_baseline.py").write_text(BASELINE_PLUGIN)
        plugin = {face: "hpc.vcluster.%s" % face for face in ("openchami", "csm")}
        base = ansible_env(ANSIBLE_VERBOSE_TO_STDERR="1", ANSIBLE_INVENTORY_UNPARSED_FAILED="1",
                           ANSIBLE_INVENTORY_PLUGINS=str(plugins))
        envs = {face: dict(base, **lab.client_env(face)) for face in ("openchami", "csm")}
        for face_env in envs.values():  # the baseline talks to OpenCHAMI's SMD, with a token of its own
            face_env["SMD_BASELINE_TOKEN"] = envs["openchami"]["LAB_ACCESS_TOKEN"]

        # Request counts of both faces (cold, no cache): Keycloak adds one on CSM.
        counts = {}
        for face in ("openchami", "csm"):
            source = work / ("count.%s.yml" % face)
            source.write_text("plugin: %s\n" % plugin[face])
            counts[face] = requests_of(run_inventory(source, for_source("ours", envs[face], face), "--list", "-vvv").stderr)

        env = {who: for_source(who, envs[args.face], args.face) for who in ENABLED}

        def fresh_tokens() -> None:
            """A new lab token in every environment: the lab's expire after an hour, a loaded machine's run lasts longer."""
            for face in envs:
                envs[face].update(lab.client_env(face))
            for who in env:
                env[who].update(lab.client_env(args.face))
                env[who]["SMD_BASELINE_TOKEN"] = env[who]["LAB_ACCESS_TOKEN"]
        if args.before:
            env["before"]["ANSIBLE_COLLECTIONS_PATH"] = args.before
        else:
            del env["before"]
        sources = {"ours": work / ("bench.%s.yml" % args.face), "baseline": work / "bench.smd_baseline.yml"}
        if args.static_repeat:
            sources["static"] = work / "static.yml"
        sources["ours"].write_text("plugin: %s\n" % plugin[args.face])
        if args.before:
            sources["before"] = sources["ours"]
        sources["baseline"].write_text("plugin: smd_baseline\n")
        cached = work / ("cached.%s.yml" % args.face)
        cached.write_text("plugin: %s\ncache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n"
                          "cache_timeout: 3600\n" % (plugin[args.face], work / "cache"))
        play = work / "load.yml"
        play.write_text(json.dumps(PLAY))
        reference = normalised(run_inventory(sources["ours"], env["ours"], "--list").stdout)
        if "static" in sources:
            sources["static"].write_text(run_inventory(sources["ours"], env["ours"], "--list", "--export", "--yaml").stdout)
            if reference != normalised(run_inventory(sources["static"], env["static"], "--list").stdout):
                failures.append("the static YAML inventory does not list the same hosts, groups and variables")
        baseline_listing = json.loads(run_inventory(sources["baseline"], env["baseline"], "--list").stdout)
        hosts = len(reference["_meta"]["hostvars"])
        if len(baseline_listing["_meta"]["hostvars"]) != hosts:
            failures.append("the baseline lists %d hosts, ours %d" % (len(baseline_listing["_meta"]["hostvars"]), hosts))
        groups = len([g for g in reference if g not in ("_meta", "all", "ungrouped")])
        base_groups = len([g for g in baseline_listing if g not in ("_meta", "all", "ungrouped")])
        sample = next(iter(reference["_meta"]["hostvars"].values()))
        if requests_of(run_inventory(cached, env["ours"], "--list", "-vvv").stderr) == 0:      # this run fills the cache
            failures.append("the first cached run made no request: the cache was not empty")

        times = {(who, kind): [] for who in sources for kind in WORKLOADS}
        cpus = {(who, kind): [] for who in sources for kind in WORKLOADS}
        sizes = {}
        for round_ in range(max(args.repeat, args.static_repeat)):
            fresh_tokens()
            for kind in WORKLOADS:
                for who in sources:
                    if round_ >= (args.static_repeat if who == "static" else args.repeat):
                        continue
                    result = workload(kind, sources[who], env[who], play)
                    times[(who, kind)].append(result.seconds)
                    cpus[(who, kind)].append(result.cpu)
                    print("round %d, %-5s %-8s wall %7.2f s  cpu %6.2f s" % (round_ + 1, kind, who, result.seconds, result.cpu),
                          flush=True)
                    if kind == "list":
                        sizes[who] = len(result.stdout)
        cache_times, cache_cpus, cache_requests = [], [], []
        fresh_tokens()
        for _round in range(max(1, args.static_repeat)):
            warm = run_inventory(cached, env["ours"], "--list", "-vvv")
            cache_times.append(warm.seconds)
            cache_cpus.append(warm.cpu)
            cache_requests.append(requests_of(warm.stderr))
            if "from the cache" not in warm.stderr:
                failures.append("a warm run did not read the cache")

        request_ok = all(counts[face] <= BARS["requests"][face] for face in counts) and max(cache_requests) == 0
        print()
        print("hpc.vcluster inventory benchmark (%s face, %d hosts; medians of %d runs, static YAML %d)" % (
            args.face, hosts, args.repeat, args.static_repeat))
        print("  ours: %d groups, %d variables per host (%s); --list %.1f MB" % (
            groups, len(sample), ", ".join(sorted(sample)), sizes["ours"] / 1e6))
        print("  baseline (smd_baseline, 2 requests, 1 variable per host): %d groups; --list %.1f MB" % (
            base_groups, sizes["baseline"] / 1e6))
        if "static" in sources:
            print("  static YAML: %.1f MB" % (sources["static"].stat().st_size / 1e6))
        print("  HTTP requests per run: openchami %d, csm %d (Keycloak token included); warm cache %d   "
              "bar <= 3 (csm 4), warm 0   %s" % (counts["openchami"], counts["csm"], max(cache_requests),
                                                 "PASS" if request_ok else "FAIL"))
        if not request_ok:
            failures.append("bar missed: requests")
        names = {"list": "ansible-inventory --list", "graph": "ansible-inventory --graph",
                 "play": "ansible-playbook (load only)"}
        print("  seconds: median wall-clock, and median CPU (user + system of the command: on a shared machine the "
              "steadier measure; the bars apply to it)")
        for kind in WORKLOADS:
            print("  %s" % names[kind])
            for who in ("baseline", "before", "ours", "static"):
                if who in sources:
                    print(timing_line(who, times[(who, kind)], cpus[(who, kind)]))
            if "before" in sources:
                print(ratio_line("before / baseline", times[("before", kind)], cpus[("before", kind)],
                                 times[("baseline", kind)], cpus[("baseline", kind)], None)[0])
            for versus, limit in (("baseline", BARS[kind]), ("static", BARS["static"] if kind == "list" else None)):
                if versus not in sources:
                    continue
                text, ok = ratio_line("ours / %s" % versus, times[("ours", kind)], cpus[("ours", kind)],
                                      times[(versus, kind)], cpus[(versus, kind)], limit)
                print(text)
                if not ok:
                    failures.append("bar missed: ours / %s on %s" % (versus, kind))
        print("  ansible-inventory --list, jsonfile cache warm")
        print(timing_line("warm cache", cache_times, cache_cpus))
        if "static" in sources:
            print(ratio_line("warm cache / static", cache_times, cache_cpus, times[("static", "list")],
                             cpus[("static", "list")], None)[0])
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
