"""The manifest as the trust boundary, against the lab: refusals change nothing, secrets never
reach a log, check mode plans without touching the site.

Proves, with the real deploy playbook:
- hostile manifests (one or more per class of tests/unit/manifest/hostile) are refused by
  the deploy before any change: the site (SMD groups and memberships, BSS, PCS power, the
  fabric's VLANs, policies and ports, UFM's PKeys, what each node container runs and since
  when) is identical before and after, and each refusal names the field or the line;
- ``deploy --check --diff`` on a vCluster that does not exist yet (under an allow-list of its
  label) prints the plan and leaves the site identical (a running vCluster growing in check mode:
  test_reconcile.py's join, ``reconcile --check --diff`` on the stack; growing and shrinking plans:
  the unit tests of the plan and of the label module);
- the stack's whole deploy at ``-vvvv`` (conftest.py ``stack``: no deployment of its own here), with
  the munge key as an Ansible Vault value, the database password and the FirecREST service's secrets
  (one of them the CSM face's client secret) as environment references, prints none of the secrets
  (plain, base64, URL-encoded), nor the lab's own credentials; the munge key still reaches the nodes;
- an external vService served over HTTPS (conftest.py ``ext_git``: git's dumb HTTP protocol from a
  small server with the lab's CA and certificate, the default transports, no relaxed policy),
  deployed at v1 in that -vvvv deploy, then bumped to v2 in the manifest: the deploy reports the
  change, the nodes run v2, and no other vService's file or daemon changes.
"""
from __future__ import annotations

import base64
import secrets
import sys
import urllib.parse
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "manifest"))
import hostile_generated  # noqa: E402  (the unit suite's generated hostile manifests)

from conftest import DB_PASS, EXT_PROBE_FILE, MUNGE_KEY, VAULT_PASS, ext_probe
from vc_lab import ROOT, failures, run_playbook, run_site_playbook, site_state

HOSTILE = ROOT / "tests" / "unit" / "manifest" / "hostile"
#: One per kind of check (the loader, a field rule, an external source, Ansible's variables, a role's contract, a
#: secret reference, bytes that are not UTF-8); each is a file of the unit suite (which refuses every class, 112
#: files), refused here by a real deploy. Each deploy costs some 30 s on a loaded lab machine: one per kind, not all.
REFUSED = ["dup_config_key", "zero_nodes", "git_ext", "magic_ssh_args", "slurm_newline_value",
           "secret_env_site_credential"]
#: ... and written on demand
GENERATED = ["not_utf8"]
LABEL = "vc_trust"


def expectation(path: Path) -> str:
    return path.read_bytes().split(b"\n", 2)[1].decode().split(":", 1)[1].strip()


def test_refused_deploys_change_nothing_on_the_site(lab, tmp_path):
    before = site_state(lab)
    paths = [HOSTILE / (name + ".manifest") for name in REFUSED]
    paths += [hostile_generated.write(name, tmp_path) for name in GENERATED]
    for path in paths:
        expected = expectation(path)
        rc, stats, output = run_playbook(lab, "openchami", "deploy", path, tmp_path)
        assert rc != 0, path.name
        assert "Traceback" not in output, path.name
        msgs = "\n".join(failures(output))
        assert expected in msgs, "%s: %s" % (path.name, msgs[-1500:])
        # the plan step's first task refused it: nothing changed on any host
        assert all(s.get("changed", 0) == 0 for s in stats.values()), "%s: %s" % (path.name, stats)
    assert site_state(lab) == before


def manifest(computes: int) -> dict:
    doc = {
        "apiVersion": "hpc.vcluster/v1", "name": LABEL, "description": "trust boundary test vCluster",
        "nodes": {"service": {"count": 1, "select": {"role": "Service"}},
                  "compute": {"count": computes, "select": {"role": "Compute"}}},
        "image": {"name": "slurm-node", "tag": "2026.11", "recipe": str(ROOT / "examples" / "images" / "slurm-node.yml")},
        "network": {"vlan": 241},
        "vservices": [{"name": "slurm", "config": {"partitions": [{"name": "batch", "default": True}]}}],
    }
    return doc


def one(results: dict) -> dict:
    """The result of a task that runs once (on the controller, reported under the play's first host)."""
    assert len(results) == 1, results
    return next(iter(results.values()))


def check_run(lab, tmp_path, doc, face: str = "openchami", args=(), env=None) -> dict:
    """deploy --check --diff of ``doc`` (a mapping or YAML text); asserts success and an unchanged site."""
    path = tmp_path / ("check-%s.yml" % secrets.token_hex(3))
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    before = site_state(lab)
    run = run_site_playbook(lab, face, "deploy", tmp_path, extra_vars={"vcluster_manifest": str(path)}, check=True,
                            diff=True, args=args, env=env)
    assert run["rc"] == 0, failures(run["output"])
    after = site_state(lab)
    assert after == before, "check mode changed the site: %s" % sorted(k for k in before if before[k] != after[k])
    return run["tasks"]


def booted_nodes(tasks: dict) -> list[str]:
    """The nodes whose boot parameters the boot step sets (or would set), over its node groups."""
    loop = one(tasks["Set the boot parameters of each node group"])
    return sorted(x for r in loop["results"] if not r.get("skipped") for x in r["changed_nodes"])


def test_check_mode_plans_a_new_vcluster_without_changing_anything(lab, tmp_path):
    # under an allow-list (as an AWX job template limited to its vClusters): the boot and power steps check the label,
    # which the nodes will join, not the labels they are in now (none)
    tasks = check_run(lab, tmp_path, manifest(2), env={"VCLUSTER_ALLOWED_LABELS": LABEL})
    plan = one(tasks["Plan the nodes"])["plan"]
    members = plan["members"]
    assert plan["label_exists"] is False and len(members) == 3 and sorted(plan["add"]) == sorted(members)
    shown = "\n".join(one(tasks["Show the plan"])["msg"])
    assert "joining: " + ", ".join(plan["add"]) in shown and "vServices: slurm" in shown
    assert one(tasks["Label the nodes"])["changed"]
    assert booted_nodes(tasks) == sorted(members)
    assert one(tasks["Put the nodes on their VLAN"])["diff"]["after"]["members"] == sorted(members)
    assert sorted(one(tasks["Power on the nodes"])["power_state"]) == sorted(members)


# ----------------------------------------------------------------------------- the stack's secrets and external vService

def encodings(value: str) -> set[str]:
    """A secret as a log could show it: plain, base64 (standard and URL-safe), URL-encoded."""
    raw = value.encode()
    forms = {value, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
             urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    return {form.rstrip("=") for form in forms if len(form) >= 8}


def credential_values(lab) -> set[str]:
    """The lab's own secrets: client secrets, passwords and the S3 secret key of credentials.json, the tokens of both
    faces, the site directory's bind password and the site DNS's API key (in the deploy's environment), the SSH key."""
    found = set()

    def walk(item):
        for key, value in (item.items() if isinstance(item, dict) else []):
            if key in ("client_secret", "password", "secret_key") and isinstance(value, str):
                found.add(value)
            walk(value)
    walk(lab.credentials())
    for face in ("openchami", "csm"):
        env = lab.env(face)
        for key in ("LAB_ACCESS_TOKEN", lab.token_variable, "VCLUSTER_CLIENT_SECRET", "VCLUSTER_TOKEN",
                    "VCLUSTER_S3_SECRET_KEY", "VCLUSTER_IAM_BIND_PASSWORD", "VCLUSTER_DNS_API_KEY"):
            if env.get(key):
                found.add(env[key])
    key_lines = Path(lab.env()["VCLUSTER_LAB_SSH_KEY"]).read_text().splitlines()
    found.update(line for line in key_lines if len(line) >= 40 and not line.startswith("-----"))
    return found


def test_no_secret_in_a_vvvv_deploy_log(lab, stack):
    log = stack.output
    assert "<" in log and "ESTABLISH" in log, "the log is not at -vvvv"
    ours = {"munge key": MUNGE_KEY, "database password": DB_PASS, "vault password": VAULT_PASS}
    hits = {}
    for what, value in list(ours.items()) + [("lab credential", v) for v in credential_values(lab)]:
        for form in encodings(value):
            if form in log:
                hits.setdefault(what, []).append(form[:6] + "...")
    assert hits == {}, "secrets in the -vvvv log: %s" % hits
    assert len(credential_values(lab)) >= 4
    # the secret did reach where it is used: every node has the manifest's munge key
    for group, ips in stack.ips.items():
        for index in range(len(ips)):
            key = stack.ssh(group, "base64 -w0 /etc/munge/munge.key", index=index).stdout.strip()
            assert key == MUNGE_KEY, (group, index)


def test_external_vservice_version_bump_runs_the_new_version(stack, ext_git):
    def probes() -> set[str]:
        return {stack.ssh("compute", f"cat {EXT_PROBE_FILE}", index=i).stdout.strip()
                for i in range(len(stack.ips["compute"]))}
    # the -vvvv deploy ran v1 (its tasks from the checkout of v1's commit) on the compute nodes
    assert "/%s/vc_ext_probe/tasks/main.yml" % ext_git["commits"]["v1"] in stack.output
    assert probes() == {"v1 it"}
    stack.manifest.write_text(stack.render(external=ext_probe("v2", ext_git["url"])))
    run = stack.deploy()
    assert run["rc"] == 0, (failures(run["output"]), run["log"])
    tasks, stats = run["tasks"], run["stats"]
    validated = one(tasks["Validate the manifest"])
    assert validated["changed"] and validated["fetched"] == ["vc_ext_probe"]
    external = validated["manifest"]["vservices"][-1]
    assert external["source"]["commit"] == ext_git["commits"]["v2"]
    assert external["role"].endswith("/%s/vc_ext_probe" % ext_git["commits"]["v2"])
    applied = next(results for name, results in tasks.items() if name.endswith("Probe | the version that runs"))
    assert len(applied) == 2 and all(result["changed"] for result in applied.values()), applied
    assert probes() == {"v2 it"}
    # the bump changed the probe only: no other vService's file changed, no daemon restarted or reloaded
    others = sorted(name for name, results in tasks.items() if not name.endswith("Probe | the version that runs")
                    and any(r.get("changed") for h, r in results.items() if h != "localhost"))
    assert not [n for n in others if any(w in n.lower() for w in ("restart", "reload", "config |", "plugstack", "munge"))], (
        others, run["log"])
    assert sum(s["changed"] for h, s in stats.items() if h != "localhost") >= len(applied)
