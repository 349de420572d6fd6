"""Deploy and heal on a flaky site (``make bench-faults``): seconds without and with the lab's faults, retries, state.

On a lab of its own (1 service + 2 compute nodes, under the machine-wide NMN claim the integration tests take;
``VCLUSTER_TEST_LAB_HOME`` reuses a running one), with the slurm-node image built beforehand (not timed), in
one session:

1. without faults: deploy of a small vCluster (1 service + 2 compute nodes, Slurm), then destroy;
2. faults on (``vcluster-lab fault``: 20 % of API requests answered 500 or 503, 50 ms + 0..50 ms latency on
   each, tokens living 30 s; the playbooks take client credentials, so tokens are renewed as they expire):
   deploy again, a compute node killed and revived (a crash: it can boot again), heal, destroy.

After each run the site is checked for duplicate or half-made state: every node in at most one label, no boot
parameters for a node outside a label, one SMD group and one fabric VLAN of the vCluster at most, power as the
run leaves it (on after deploy and heal, off after destroy), the label's members as the run leaves them.
The retries are counted by the collection's HTTP client (``VCLUSTER_API_RETRY_LOG``: one JSON line per
retry, read-back or token refresh, per run).

Prints the seconds of each run, the ratio faults/no faults, the retries; writes .bench/faults.json.
Exit status 1 when a run fails or a check finds bad state.
"""
from __future__ import annotations

import collections
import json
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import requests  # noqa: E402

from vc_lab import Lab, failed_messages, free_port, run_site_playbook  # noqa: E402

NAME = "fbench"
SERVICE = "x3000c0s0b0n0"
COMPUTES = ["x1000c0s0b0n0", "x1000c0s1b0n0"]
KILLED = COMPUTES[1]
VLAN = 231
MANIFEST = {
    "apiVersion": "hpc.vcluster/v1",
    "name": NAME,
    "description": "make bench-faults",
    "nodes": {"service": {"count": 1, "select": {"role": "Service"}},
              "compute": {"count": 2, "select": {"role": "Compute"}}},
    "image": {"name": "slurm-node", "tag": "2026.11", "recipe": str(ROOT / "examples" / "images" / "slurm-node.yml")},
    "network": {"vlan": VLAN},
    "vservices": [{"name": "slurm", "version": "1.0",
                   "config": {"partitions": [{"name": "batch", "default": True, "max_time": "01:00:00"}]}}],
}
FAULTS = ("--error-rate", "0.2", "--latency", "50", "--jitter", "50", "--token-ttl", "30")


def get(lab: Lab, path: str, tries: int = 8):
    """A read of the site for the checks, retried past the faults (the checks must not fail on them)."""
    session = lab.session()
    for attempt in range(tries):
        reply = session.get(lab.url + path, timeout=60, params={"expand": "true"} if "fabric" in path else None)
        if reply.status_code == 404 and "bootparameters" in path:  # BSS: no entries at all
            return []
        if reply.status_code < 500 or attempt == tries - 1:
            reply.raise_for_status()
            return reply.json()
        time.sleep(0.5)
    raise AssertionError("unreachable")


def check_state(lab: Lab, deployed: bool, members: list[str] | None) -> list[str]:
    """What is wrong with the site after a run: [] when the state is whole and single.

    ``members`` None (a run that failed): only what must hold whatever the run did (no node in two labels,
    no duplicate group, VLAN or boot parameter entry, no boot parameters outside a label)."""
    problems = []
    memberships = get(lab, "/hsm/v2/memberships") or []
    in_label = {}
    for entry in memberships:
        labels = entry.get("groupLabels") or []
        if len(labels) > 1:
            problems.append("%s is in %d labels: %s" % (entry["id"], len(labels), labels))
        if labels:
            in_label[entry["id"]] = labels
    groups = [g for g in get(lab, "/hsm/v2/groups") or [] if g.get("label") == NAME]
    if len(groups) > (1 if deployed else 0):
        problems.append("%d SMD groups %s" % (len(groups), NAME))
    got = sorted(groups[0].get("members", {}).get("ids", [])) if groups else []
    if members is not None and got != sorted(members):
        problems.append("label %s holds %s, expected %s" % (NAME, got, sorted(members)))
    boot = get(lab, "/boot/v1/bootparameters") or []
    hosts = collections.Counter(h for entry in boot for h in entry.get("hosts") or [])
    for host, count in hosts.items():
        if host not in in_label and host in [SERVICE] + COMPUTES:
            problems.append("boot parameters for %s, which is in no label" % host)
        if count > 1:
            problems.append("%d boot parameter entries for %s" % (count, host))
    for host in members or []:
        if host not in hosts:
            problems.append("no boot parameters for %s, a member" % host)
    vlans = [v for v in get(lab, "/apis/fabric-manager/fabric/vlans").get("documents", {}).values()
             if int(v.get("id", -1)) == VLAN]
    if len(vlans) > 1:
        problems.append("%d fabric VLANs %d" % (len(vlans), VLAN))
    if members is None:
        return problems
    power = {p["xname"]: p["powerState"] for p in get(lab, "/power-control/v1/power-status")["status"]}
    for host in [SERVICE] + COMPUTES:
        want = "on" if host in members else "off"
        if power.get(host) != want:
            problems.append("%s is powered %s, expected %s" % (host, power.get(host), want))
    return problems


class Runs:
    """The timed playbook runs of the session, each with its retries and its state check."""

    def __init__(self, lab: Lab, work: Path, env: dict):
        self.lab, self.work, self.env = lab, work, env
        self.figures: dict = {"runs": []}
        self.failed: list[str] = []

    def run(self, label: str, playbook: str, deployed: bool, members: list[str], faults: bool) -> bool:
        log = self.work / ("retries-%s.jsonl" % label.replace(" ", "-"))
        env = dict(self.env, VCLUSTER_API_RETRY_LOG=str(log))
        result = run_site_playbook(self.lab, "openchami", playbook, self.work, env=env,
                                   extra_vars={"vcluster_manifest": str(self.work / "manifest.yml")})
        (self.work / ("%s.out" % label.replace(" ", "-"))).write_text(result["output"])
        events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        kinds = collections.Counter(e.get("event") for e in events)
        statuses = collections.Counter(str(e.get("status")) for e in events if e.get("event") == "retry")
        problems = check_state(self.lab, deployed, None if result["rc"] else members)
        row = {"run": label, "faults": faults, "rc": result["rc"], "seconds": round(result["seconds"], 1),
               "retries": kinds.get("retry", 0), "read_backs": kinds.get("read-back", 0),
               "token_refreshes": kinds.get("refresh", 0), "retry_statuses": dict(statuses), "problems": problems}
        self.figures["runs"].append(row)
        print("  %-28s rc=%d %6.1f s  retries %d (%s), read-backs %d, 401 refreshes %d  state: %s" % (
            label, result["rc"], result["seconds"], row["retries"], ", ".join("%s: %d" % kv for kv in sorted(statuses.items())),
            row["read_backs"], row["token_refreshes"], "; ".join(problems) or "ok"), flush=True)
        if result["rc"]:
            self.failed.append("%s: %s" % (label, " | ".join(failed_messages(result))[-2000:]))
        elif problems:
            self.failed.append("%s: %s" % (label, "; ".join(problems)))
        return result["rc"] == 0


def session(lab: Lab, work: Path) -> int:
    import yaml
    from test_lifecycle import build_images

    (work / "manifest.yml").write_text(yaml.safe_dump(MANIFEST))
    print("bench-faults: building the slurm-node image (cached; not timed)", flush=True)
    build_images(lab)
    # the inventory and the client environment are fetched before the faults are on (the lab CLI's own token
    # request would meet them); the playbooks take client credentials instead of the static token, so that
    # tokens of 30 s are renewed as they expire (a static token cannot be)
    (work / "lab.openchami.yml").write_text(lab.run("inventory", "--face", "openchami").stdout)
    base = lab.env("openchami")
    client_id, secret = lab.credentials()["openchami"]["client_id"], lab.credentials()["openchami"]["client_secret"]
    env = {lab.token_variable: "", "VCLUSTER_CLIENT_ID": client_id, "VCLUSTER_CLIENT_SECRET": secret}
    assert base["VCLUSTER_API_URL"]
    runs = Runs(lab, work, env)
    members = [SERVICE] + COMPUTES
    lab.run("fault", "--clear")
    print("bench-faults: without faults", flush=True)
    ok = runs.run("deploy", "deploy", True, members, False)
    runs.run("destroy", "destroy", False, [], False)
    if ok:
        lab.run("fault", *FAULTS)
        print("bench-faults: with faults (%s)" % " ".join(FAULTS), flush=True)
        try:
            if runs.run("deploy with faults", "deploy", True, members, True):
                lab.run("fault", "--kill", KILLED)
                time.sleep(5)
                lab.run("fault", "--revive", KILLED)
                runs.run("heal with faults", "heal", True, members, True)
            runs.run("destroy with faults", "destroy", False, [], True)
        finally:
            lab.run("fault", "--clear", check=False)
    report(runs.figures)
    for failure in runs.failed:
        print("FAILED " + failure, file=sys.stderr)
    return 1 if runs.failed else 0


def report(figures: dict) -> None:
    rows = {r["run"]: r for r in figures["runs"]}
    figures["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    figures["faults"] = " ".join(FAULTS)
    if "deploy" in rows and "deploy with faults" in rows:
        figures["deploy_ratio"] = round(rows["deploy with faults"]["seconds"] / rows["deploy"]["seconds"], 2)
    if "destroy" in rows and "destroy with faults" in rows:
        figures["destroy_ratio"] = round(rows["destroy with faults"]["seconds"] / rows["destroy"]["seconds"], 2)
    out = ROOT / ".bench"
    out.mkdir(exist_ok=True)
    (out / "faults.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("\nbench-faults (lab, 1 service + 2 compute nodes, 2 cores; faults: %s)" % figures["faults"])
    print("| run | rc | seconds | retries | read-backs | 401 refreshes | state |")
    print("|---|---|---|---|---|---|---|")
    for r in figures["runs"]:
        cells = (r["run"], r["rc"], r["seconds"], r["retries"], r["read_backs"], r["token_refreshes"],
                 "; ".join(r["problems"]) or "ok")
        print("| %s | %d | %.1f | %d | %d | %d | %s |" % cells)
    for key in ("deploy_ratio", "destroy_ratio"):
        if key in figures:
            print("%s (faults / no faults): %.2f" % (key, figures[key]))


def main() -> int:
    import tempfile

    from vcluster_lab.nmn_claim import claim_nmn

    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    print("bench-faults: work directory %s (each run's output and retry log)" % work, flush=True)
    reuse = os.environ.get("VCLUSTER_TEST_LAB_HOME")
    if reuse:
        state = json.loads((Path(reuse) / "lab.json").read_text())
        return session(Lab(Path(reuse), state["prefix"], int(state["port"])), work)
    lab = Lab(work / "home", "vcfb" + secrets.token_hex(3), free_port())
    os.environ.setdefault("VCLUSTER_TEST_NMN_WAIT", "3600")
    with claim_nmn():
        try:
            lab.run("up", "--nodes", str(len(COMPUTES)), "--service-nodes", "1", "--port", str(lab.port), timeout=1800)
            return session(lab, work)
        finally:
            down = lab.run("down", check=False)
            if down.returncode:
                print("vcluster-lab down failed: %s" % down.stderr, file=sys.stderr)


if __name__ == "__main__":
    requests.packages.urllib3.disable_warnings()
    sys.exit(main())
