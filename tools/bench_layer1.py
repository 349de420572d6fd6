"""Layer 1 at scale (``make bench-layer1``): API requests and seconds per step at two vCluster sizes.

A records-only lab (no containers) in a temporary home, on a free port, seeded with ``--site`` nodes. For each
size (1,000 and 10,000 nodes by default), one ``ansible-playbook`` run carves a vCluster of that many nodes and
releases it again with the collection's modules: label (node_group), boot parameters (boot_params), cloud-init
data (cloud_init, OpenCHAMI only), PKey (network_segment through UFM), VLAN (network_segment through the fabric
manager), power on and off (power), and the reverse. Between steps the playbook reads the lab's request counter
(``GET /lab/v1/requests?reset=1``), so each step's requests are exactly the calls its module made; the step's
seconds are the task's duration (the ansible.posix.json callback). Sizes run interleaved, ``--repeat`` rounds,
medians reported.

Bars: every step makes the same number of requests at both sizes (except the VLAN steps, which the fabric
manager's API makes one PATCH per port: reported, not barred), and no step's time grows faster than the node
count (ratio of medians at most the size ratio). The status polls of a power transition (``GET
/transitions/{id}``) are counted apart: how many there are follows how long the transition takes (on a site,
the BMCs; in the lab, its records), not the node count. Exit status 1 when a bar is missed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench_lab import BIN, Lab, ansible_env, exit_on_sigterm

LABEL = "bench_vc"
PKEY = "0x0a12"
VLAN = 210
# the image the records driver knows (vcluster_lab.inventory_data.DEFAULT_IMAGE), by name and tag
IMAGE = {"name": "vclab-base", "tag": "bookworm"}
# Steps whose request count the API makes grow with the node count: reported, not held to the bar.
PER_NODE_API = {"vlan": "the fabric manager has no bulk port update: one PATCH per port",
                "vlan absent": "the fabric manager has no bulk port update: one PATCH per port"}


def steps(face: str, vlan: bool = False) -> list[tuple[str, str, dict]]:
    """(step name, module, arguments) in playbook order; ``{{ nodes }}`` is the vCluster's node list.

    ``vlan``: the VLAN steps only (with the label they need), run at their own, smaller sizes.
    """
    label = ("label", "hpc.vcluster.node_group", {"label": LABEL, "exclusive_group": "vcluster", "tags": ["vcluster"],
                                                  "description": "benchmark", "members": "{{ nodes }}"})
    unlabel = ("unlabel", "hpc.vcluster.node_group", {"label": LABEL, "state": "absent"})
    if vlan:
        return [label, ("vlan", "hpc.vcluster.network_segment", {"label": LABEL, "vlan": VLAN}),
                ("vlan absent", "hpc.vcluster.network_segment", {"label": LABEL, "vlan": VLAN, "state": "absent"}),
                unlabel]
    out = [
        label,
        ("boot", "hpc.vcluster.boot_params", {"label": LABEL, "image": IMAGE, "params": "console=ttyS0"}),
    ]
    if face == "openchami":
        out.append(("cloud-init", "hpc.vcluster.cloud_init", {"label": LABEL, "cloud_config": {"runcmd": ["true"]}}))
    out += [
        ("pkey", "hpc.vcluster.network_segment", {"label": LABEL, "pkey": PKEY}),
        ("power on", "hpc.vcluster.power", {"label": LABEL, "state": "on"}),
        ("power off", "hpc.vcluster.power", {"label": LABEL, "state": "off"}),
        ("pkey absent", "hpc.vcluster.network_segment", {"label": LABEL, "pkey": PKEY, "state": "absent"}),
        ("boot absent", "hpc.vcluster.boot_params", {"label": LABEL, "state": "absent"}),
    ]
    if face == "openchami":
        out.append(("cloud-init absent", "hpc.vcluster.cloud_init", {"label": LABEL, "state": "absent"}))
    out.append(unlabel)
    return out


def playbook(steps_: list[tuple[str, str, dict]], lab: Lab) -> list[dict]:
    counter = {"url": lab.url + "/lab/v1/requests?reset=1", "ca_path": str(lab.ca_path), "use_proxy": False}
    tasks = [{"name": "reset the request counter", "ansible.builtin.uri": counter}]
    for name, module, args in steps_:
        tasks.append({"name": "step: " + name, module: args})
        tasks.append({"name": "count: " + name, "ansible.builtin.uri": counter})
    return [{"name": "carve and release a vCluster", "hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}, "tasks": tasks}]


def run_round(work: Path, lab: Lab, env: dict, steps_: list, nodes: list[str]) -> dict:
    """One carve-and-release at one size: {step: (requests, seconds, routes)}."""
    (work / "nodes.json").write_text(json.dumps({"nodes": nodes}))
    book = work / "carve.yml"
    book.write_text(json.dumps(playbook(steps_, lab), indent=1))
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book), "-e", "@" + str(work / "nodes.json")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise SystemExit("ansible-playbook did not print JSON (rc %d):\n%s\n%s" % (
            done.returncode, done.stdout[-3000:], done.stderr[-3000:]))
    results, pending = {}, None
    for entry in report["plays"][0]["tasks"]:
        name = entry["task"]["name"]
        result = entry["hosts"]["localhost"]
        if result.get("failed"):
            raise SystemExit("%s failed: %s" % (name, result.get("msg")))
        if name.startswith("step: "):
            duration = entry["task"]["duration"]
            pending = (name[6:], _seconds(duration["end"]) - _seconds(duration["start"]))
        elif name.startswith("count: "):
            routes = result["json"]["routes"]
            polls = sum(n for route, n in routes.items() if route.startswith("GET ") and route.endswith("/transitions/<tid>"))
            results[pending[0]] = (result["json"]["total"] - polls, pending[1], routes, polls)
    return results


def _seconds(stamp: str) -> float:
    # ansible.posix.json writes naive UTC ISO 8601 with a Z
    return datetime.datetime.fromisoformat(stamp.rstrip("Z")).timestamp()


def power_off_all(lab: Lab, env: dict, nodes: list[str]) -> None:
    """Every seeded node off, so that each round powers the same nodes on (the seed leaves most of them on)."""
    session = requests.Session()
    session.trust_env = False
    headers = {"Authorization": "Bearer " + env["LAB_ACCESS_TOKEN"]}
    base = lab.url + "/power-control/v1"
    reply = session.post(base + "/transitions", json={"operation": "off", "location": [{"xname": x} for x in nodes]},
                         headers=headers, verify=str(lab.ca_path), timeout=120)
    reply.raise_for_status()
    tid = reply.json()["transitionID"]
    for _attempt in range(1200):
        state = session.get(base + "/transitions/" + tid, headers=headers, verify=str(lab.ca_path), timeout=120).json()
        if state["transitionStatus"] in ("completed", "aborted"):
            return
        time.sleep(0.5)
    raise SystemExit("powering the seeded nodes off did not finish")


def seeded_nodes(lab: Lab, env: dict) -> list[str]:
    session = requests.Session()
    session.trust_env = False
    reply = session.get(lab.url + "/hsm/v2/State/Components", params={"type": "Node"}, verify=str(lab.ca_path),
                        headers={"Authorization": "Bearer " + env["LAB_ACCESS_TOKEN"]}, timeout=120)
    reply.raise_for_status()
    comps = sorted(reply.json()["Components"], key=lambda c: c.get("NID") or 0)
    return [c["ID"] for c in comps]


def report(title: str, face: str, site: int, repeat: int, sizes: list[int], steps_: list, runs: dict) -> list[str]:
    """Print one section's table and routes; returns the bars it missed."""
    failures = []
    small, large = sizes
    factor = large / small
    print()
    print("hpc.vcluster layer-1 benchmark: %s (%s face, records-only lab with %d nodes, median of %d rounds)" % (
        title, face, site, repeat))
    print("  %-18s %10s %10s %10s %10s %8s   %s" % (
        "step", "req@%d" % small, "req@%d" % large, "s@%d" % small, "s@%d" % large, "ratio", "verdict"))
    for name, _module, _args in steps_:
        req = {size: [r[name][0] for r in runs[size]] for size in sizes}
        polls = {size: sorted(set(r[name][3] for r in runs[size])) for size in sizes}
        sec = {size: statistics.median(r[name][1] for r in runs[size]) for size in sizes}
        same = len(set(req[small] + req[large])) == 1
        ratio = sec[large] / sec[small] if sec[small] > 0 else float("inf")
        linear = ratio <= factor
        if name in PER_NODE_API:
            verdict = "reported: " + PER_NODE_API[name]
        else:
            verdict = "PASS" if same and linear else "FAIL"
            if not same:
                failures.append("%s: %s requests at %d nodes, %s at %d" % (name, req[small], small, req[large], large))
            if not linear:
                failures.append("%s: time ratio %.2f above %.0f" % (name, ratio, factor))
        if any(polls[size] != [0] for size in sizes):
            verdict += "; status polls %s at %d, %s at %d (they follow the transition's duration)" % (
                "/".join(map(str, polls[small])), small, "/".join(map(str, polls[large])), large)
        print("  %-18s %10s %10s %10.2f %10.2f %8.2f   %s" % (
            name, "/".join(map(str, sorted(set(req[small])))), "/".join(map(str, sorted(set(req[large])))),
            sec[small], sec[large], ratio, verdict))
    print("  requests per route at %d nodes (first round):" % large)
    for name, _module, _args in steps_:
        routes = runs[large][0][name][2]
        print("    %-18s %s" % (name, ", ".join("%s x%d" % (route, n) for route, n in routes.items())))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000", help="vCluster sizes, comma-separated (two)")
    parser.add_argument("--site", type=int, default=0, help="seeded nodes (default: the largest size)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size, interleaved (median reported)")
    parser.add_argument("--vlan-sizes", default="100,1000",
                        help="sizes of the VLAN steps (one fabric-manager PATCH per port, so kept smaller); '' skips")
    parser.add_argument("--vlan-repeat", type=int, default=1, help="rounds of the VLAN section")
    parser.add_argument("--face", choices=("openchami", "csm"), default="openchami")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",")]
    if len(sizes) != 2 or sizes[0] >= sizes[1]:
        raise SystemExit("--sizes takes two increasing sizes, e.g. 1000,10000")
    vlan_sizes = [int(s) for s in args.vlan_sizes.split(",")] if args.vlan_sizes else []
    site = args.site or max(sizes + vlan_sizes)

    work = Path(tempfile.mkdtemp(prefix="vcluster-bench-layer1-"))
    lab = Lab(work / "lab")
    failures = []
    try:
        started = time.perf_counter()
        print(lab.start(site, 0))
        print("lab: records driver on port %d, %d nodes seeded in %.1f s" % (lab.port, site, time.perf_counter() - started))
        client = lab.client_env(args.face)
        ufm = lab.credentials()["ufm"]
        env = ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
                          VCLUSTER_UFM_USERNAME=ufm["username"], VCLUSTER_UFM_PASSWORD=ufm["password"], **client)
        token_env = client if args.face == "openchami" else lab.client_env("openchami")
        everyone = seeded_nodes(lab, token_env)
        power_off_all(lab, token_env, everyone)
        sections = [("carve and release", sizes, steps(args.face), args.repeat)]
        if args.vlan_sizes:
            sections.append(("VLAN (fabric manager)", vlan_sizes, steps(args.face, vlan=True), args.vlan_repeat))
        for title, pair, steps_, repeat in sections:
            runs = {size: [] for size in pair}
            for _round in range(repeat):
                for size in pair:
                    began = time.perf_counter()
                    runs[size].append(run_round(work, lab, env, steps_, everyone[:size]))
                    print("%s, round %d, %d nodes: %.1f s" % (title, _round + 1, size, time.perf_counter() - began),
                          flush=True)
            failures += report(title, args.face, site, repeat, pair, steps_, runs)
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
