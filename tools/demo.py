"""`make demo`: bring up the lab, deploy examples/vclusters/demo.yml on it, run a Slurm job.

Everything a user would type, in order, with real commands: `vcluster-lab up`, the lab's
environment and inventory source, `ansible-playbook hpc.vcluster.deploy`, then
`srun -N<computes> hostname` on the vCluster's controller over SSH. Prints a summary and
the time since `make demo` started (the Makefile passes its start time).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(argv: list[str], env: dict, capture: bool = False) -> subprocess.CompletedProcess:
    print("$ " + " ".join(shlex.quote(str(a)) for a in argv), flush=True)
    proc = subprocess.run([str(a) for a in argv], env=env, text=True, capture_output=capture, cwd=ROOT, check=False)
    if proc.returncode != 0:
        if capture:
            sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"demo: {argv[0]} failed (exit {proc.returncode})")
    return proc


def plain(value):
    """ansible-inventory (2.19) writes values that came from the site as {"__ansible_unsafe": value}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return plain(value["__ansible_unsafe"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default="examples/vclusters/demo.yml")
    parser.add_argument("--face", choices=["openchami", "csm"], default="openchami")
    parser.add_argument("--started", type=float, default=time.time(), help="epoch seconds `make demo` started")
    parser.add_argument("--destroy", action="store_true", help="destroy the demo vCluster (the lab stays up)")
    args = parser.parse_args()

    manifest = yaml.safe_load((ROOT / args.manifest).read_text())
    groups = manifest["nodes"]
    computes = groups.get("compute", {}).get("count", 0)
    services = groups.get("service", {}).get("count", 0)
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".collections"))
    env.setdefault("CONTAINERS_CONF", str(ROOT / "lab" / "containers.conf"))
    lab = str(BIN / "vcluster-lab")

    if not args.destroy:
        step(f"the lab: {services} service + {computes} compute nodes")
        run([lab, "up", "--nodes", computes, "--service-nodes", services], env)

    step(f"the site's environment and inventory source ({args.face} face)")
    site = json.loads(run([lab, "env", "--face", args.face, "--format", "json"], env, capture=True).stdout)
    env.update(site)
    inventory = ROOT / ".lab" / f"demo.{args.face}.yml"
    inventory.write_text(run([lab, "inventory", "--face", args.face], env, capture=True).stdout)
    print(f"inventory source: {inventory.relative_to(ROOT)}")

    if args.destroy:
        step(f"destroy {args.manifest}")
        run([BIN / "ansible-playbook", "-i", inventory, "playbooks/destroy.yml",
             "-e", f"vcluster_manifest={ROOT / args.manifest}"], env)
        print("\nthe nodes are free again; deploy again with `make demo`, remove the lab with `make demo-down`")
        return 0

    step(f"deploy {args.manifest}")
    run([BIN / "ansible-playbook", "-i", inventory, "playbooks/deploy.yml", "-e", f"vcluster_manifest={ROOT / args.manifest}"], env)

    step("run a job on the vCluster")
    listing = json.loads(run([BIN / "ansible-inventory", "-i", inventory, "--list"], env, capture=True).stdout)
    hostvars = plain(listing["_meta"]["hostvars"])
    members = sorted(h for h, v in hostvars.items() if manifest["name"] in (v.get("vcluster_labels") or []))
    controller = next(h for h in members if hostvars[h].get("smd_role") == "Service")
    key = site["VCLUSTER_LAB_SSH_KEY"]
    job = run(["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", f"root@{hostvars[controller]['ansible_host']}",
               f"srun -N{computes} hostname | sort"], env, capture=True)
    elapsed = time.time() - args.started
    print(f"srun -N{computes} hostname on {controller}:")
    for line in job.stdout.split():
        print(f"  {line}")

    image = manifest["image"]
    vservices = ", ".join(f"{v['name']} {v.get('version', '')}".strip() for v in manifest.get("vservices", []))
    print("\n==> summary")
    print(f"  vCluster (label): {manifest['name']}  on the lab's {args.face} face")
    for host in members:
        v = hostvars[host]
        print(f"  {host:<12} {v.get('smd_xname', ''):<16} {v.get('smd_role', ''):<8} {v.get('ansible_host', '')}")
    print(f"  image:     {image['name']}:{image['tag']}")
    print(f"  vServices: {vservices or 'none'}")
    print(f"  time:      {elapsed:.0f} s from `make demo` to the srun output")
    print("\n  destroy the vCluster:  make demo-destroy   (its nodes go back to the free pool)")
    print("  remove the lab:        make demo-down   (make test needs it down: it brings up its own labs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
