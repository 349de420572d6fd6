"""The manifest as the trust boundary, against the lab: refusals change nothing, secrets never
reach a log, check mode plans without touching the site.

Proves, with the real deploy playbook:
- hostile manifests (one or more per class of tests/unit/manifest/hostile) are refused by
  the deploy before any change: the site (SMD groups and memberships, BSS, PCS power, the
  fabric's VLANs, policies and ports, UFM's PKeys, what each node container runs and since
  when) is identical before and after, and each refusal names the field or the line;
- ``deploy --check --diff`` on a vCluster that does not exist yet (under an allow-list of its
  label), then on the same one growing, prints the plan and leaves the site identical (shrinking in
  check mode: the unit tests of the plan and of the label module);
- a whole deploy at ``-vvvv``, with the munge key as an Ansible Vault value and the
  database password as an environment variable reference, through the CSM face (client
  credentials), prints none of the secrets (plain, base64, URL-encoded), nor the lab's own
  credentials; the munge key still reaches the nodes;
- an external vService served over HTTPS (git's dumb HTTP protocol from a small server with
  the lab's CA and certificate: the default transports, no relaxed policy), deployed at v1 in
  that -vvvv deploy, then bumped to v2 in the manifest: the deploy reports the change and the
  nodes run v2.
"""
from __future__ import annotations

import base64
import functools
import http.server
import secrets
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
import yaml

from vcluster_lab.tls import server_context

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "manifest"))
import hostile_generated  # noqa: E402  (the unit suite's generated hostile manifests)

from vc_lab import PLAYBOOK, ROOT, failures, lab_nodes, restore_nodes, run_playbook, run_site_playbook, site_state

HOSTILE = ROOT / "tests" / "unit" / "manifest" / "hostile"
#: One per kind of check (the loader, a field rule, an external source, Ansible's variables, a role's contract, a
#: secret reference); each is a file of the unit suite (which refuses every class, 112 files), refused here by a
#: real deploy. Each deploy costs some 30 s on a loaded lab machine: a few, not all.
REFUSED = ["dup_config_key", "laughs_config", "zero_nodes", "storage_source_newline", "git_ext", "magic_ssh_args",
           "slurm_newline_value", "secret_env_site_credential"]
#: ... and written on demand (not UTF-8, a megabyte kernel command line).
GENERATED = ["not_utf8", "kernel_1mb"]
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


def manifest(computes: int, external: dict | None = None) -> dict:
    doc = {
        "apiVersion": "hpc.vcluster/v1", "name": LABEL, "description": "trust boundary test vCluster",
        "nodes": {"service": {"count": 1, "select": {"role": "Service"}},
                  "compute": {"count": computes, "select": {"role": "Compute"}}},
        "image": {"name": "slurm-node", "tag": "2026.11", "recipe": str(ROOT / "examples" / "images" / "slurm-node.yml")},
        "network": {"vlan": 241},
        "vservices": [{"name": "slurm", "config": {"partitions": [{"name": "batch", "default": True}]}}],
    }
    if external:
        doc["vservices"].append(external)
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


# ----------------------------------------------------------------------------- a deployed vCluster with secrets

MUNGE_KEY = base64.b64encode(secrets.token_bytes(64)).decode()
DB_PASS = "it-" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
VAULT_PASS = "vault-" + secrets.token_hex(12)


def vault_encrypt(text: str, password_file: Path) -> str:
    proc = subprocess.run([str(Path(PLAYBOOK).parent / "ansible-vault"), "encrypt_string", "--vault-password-file",
                           str(password_file), "--name", "x", text], capture_output=True, text=True, check=True)
    return yaml.safe_load(proc.stdout.replace("!vault", "", 1))["x"]


@pytest.fixture(scope="module")
def git_https(lab, tmp_path_factory):
    """A role with tags v1 and v2 in a bare repository served over HTTPS (lab CA), and its commits."""
    tmp = tmp_path_factory.mktemp("git")
    work = tmp / "vc_ext_probe"
    (work / "tasks").mkdir(parents=True)
    (work / "meta").mkdir()
    commits = {}

    def git(*args, cwd=work):
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
    git("init", "-q", "-b", "main")
    for version in ("v1", "v2"):
        (work / "meta" / "argument_specs.yml").write_text(
            "---\nargument_specs:\n  main:\n    short_description: probe\n    options:\n"
            "      vc_ext_probe_label: {type: str, default: probe}\n")
        (work / "tasks" / "main.yml").write_text(
            "---\n- name: Probe | the version that runs\n  ansible.builtin.copy:\n"
            "    content: \"%s {{ vc_ext_probe_label }}\\n\"\n    dest: /etc/vcluster-ext-probe\n    mode: \"0644\"\n"
            % version)
        git("add", "-A")
        git("-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-q", "-m", version)
        git("tag", version)
        commits[version] = git("rev-parse", "HEAD")
    served = tmp / "srv"
    served.mkdir()
    git("clone", "-q", "--bare", str(work), str(served / "vc_ext_probe.git"), cwd=tmp)
    git("update-server-info", cwd=served / "vc_ext_probe.git")  # git's dumb HTTP protocol: static files

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    server.socket = server_context(lab.home / "tls").wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": "https://127.0.0.1:%d/vc_ext_probe.git" % server.server_address[1], "commits": commits,
               "env": {"GIT_SSL_CAINFO": str(lab.home / "tls" / "ca.pem"),
                       "VCLUSTER_VSERVICE_CACHE": str(tmp / "vservice-cache")}}
    finally:
        server.shutdown()
        server.server_close()


def probe(version: str, url: str) -> dict:
    """The external vService of these tests, at ``version`` of the repository at ``url``."""
    return {"name": "vc_ext_probe", "source": {"git": url, "version": version}, "nodes": ["compute"],
            "after": ["slurm"], "config": {"vc_ext_probe_label": "it"}}


@pytest.fixture(scope="module")
def deployed(lab, tmp_path_factory, git_https):
    """vc_trust (1 service + 2 compute nodes, the external vService at v1) deployed at -vvvv with secrets; destroyed
    at the end."""
    tmp = tmp_path_factory.mktemp("trust")
    password_file = tmp / "vault-pass"
    password_file.write_text(VAULT_PASS + "\n")
    password_file.chmod(0o600)
    cipher = vault_encrypt(MUNGE_KEY, password_file)

    def render(computes: int, external: dict | None = None) -> str:
        """The manifest as YAML text, its Slurm secrets as a !vault value and an environment reference."""
        doc = manifest(computes, external)
        doc["vservices"][0]["config"].update(dbd_storage_pass={"secret": {"env": "VCLUSTER_SECRET_IT_DBPASS"}},
                                             munge_key_b64="MUNGE_KEY_PLACEHOLDER")
        lines = []
        for line in yaml.safe_dump(doc, sort_keys=False, default_flow_style=False).splitlines():
            if "MUNGE_KEY_PLACEHOLDER" in line:
                head = line[:line.index("munge_key_b64")]
                lines.append(head + "munge_key_b64: !vault |")
                lines.extend(" " * (len(head) + 2) + part for part in cipher.strip().splitlines())
            else:
                lines.append(line)
        return "\n".join(lines) + "\n"
    path = tmp / "vc_trust.yml"
    path.write_text(render(2, probe("v1", git_https["url"])))
    args = ("--vault-password-file", str(password_file))
    env = dict(git_https["env"], VCLUSTER_SECRET_IT_DBPASS=DB_PASS)
    rc, _stats, log = run_playbook(lab, "csm", "deploy", path, tmp, "-vvvv", *args, env=env,
                                   callback="ansible.builtin.default")
    (tmp / "deploy-vvvv.log").write_text(log)
    try:
        assert rc == 0, log[-5000:]
        yield {"path": path, "log": log, "args": args, "env": env, "tmp": tmp, "render": render}
    finally:
        rc, _stats, output = run_playbook(lab, "csm", "destroy", path, tmp, *args, env=env)
        restore_nodes(lab)
        assert rc == 0, failures(output)


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


def test_no_secret_in_a_vvvv_deploy_log(lab, deployed):
    log = deployed["log"]
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
    nodes = lab_nodes(lab)
    for xname in deployed_members(lab):
        key = lab.ssh(nodes[xname]["ip"], "base64 -w0 /etc/munge/munge.key").stdout.strip()
        assert key == MUNGE_KEY, xname


def deployed_members(lab) -> list[str]:
    reply = lab.session().get(lab.url + "/hsm/v2/groups/" + LABEL, timeout=30)
    reply.raise_for_status()
    return reply.json()["members"]["ids"]


def test_check_mode_on_a_growing_vcluster(lab, deployed, git_https):
    members = sorted(deployed_members(lab))
    assert len(members) == 3
    env, args, tmp = deployed["env"], deployed["args"], deployed["tmp"]
    tasks = check_run(lab, tmp, deployed["render"](3, probe("v1", git_https["url"])), face="csm", args=args, env=env)
    plan = one(tasks["Plan the nodes"])["plan"]
    assert len(plan["add"]) == 1 and plan["remove"] == [] and set(members) < set(plan["members"])
    # only the joining node boots anew: the others keep their boot parameters
    assert booted_nodes(tasks) == plan["add"]
    assert one(tasks["Label the nodes"])["changed"]
    assert one(tasks["Put the nodes on their VLAN"])["diff"]["after"]["members"] == sorted(plan["members"])
    assert sorted(deployed_members(lab)) == members


def test_external_vservice_version_bump_runs_the_new_version(lab, deployed, git_https):
    env, args, tmp = deployed["env"], deployed["args"], deployed["tmp"]
    nodes = lab_nodes(lab)
    computes = [x for x in deployed_members(lab) if x.startswith("x1000")]
    assert len(computes) == 2, computes

    def probes() -> set[str]:
        return {lab.ssh(nodes[x]["ip"], "cat /etc/vcluster-ext-probe").stdout.strip() for x in computes}
    # the -vvvv deploy ran v1 (its tasks from the checkout of v1's commit) on the compute nodes
    assert "/%s/vc_ext_probe/tasks/main.yml" % git_https["commits"]["v1"] in deployed["log"]
    assert probes() == {"v1 it"}
    deployed["path"].write_text(deployed["render"](2, probe("v2", git_https["url"])))
    run = run_site_playbook(lab, "csm", "deploy", tmp, extra_vars={"vcluster_manifest": str(deployed["path"])},
                            args=args, env=env)
    assert run["rc"] == 0, failures(run["output"])
    tasks, stats = run["tasks"], run["stats"]
    validated = one(tasks["Validate the manifest"])
    assert validated["changed"] and validated["fetched"] == ["vc_ext_probe"]
    external = validated["manifest"]["vservices"][-1]
    assert external["source"]["commit"] == git_https["commits"]["v2"]
    assert external["role"].endswith("/%s/vc_ext_probe" % git_https["commits"]["v2"])
    applied = next(results for name, results in tasks.items() if name.endswith("Probe | the version that runs"))
    assert len(applied) == 2 and all(result["changed"] for result in applied.values()), applied
    assert probes() == {"v2 it"}
    assert sum(s["changed"] for h, s in stats.items() if h != "localhost") >= len(applied)
