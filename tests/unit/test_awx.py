"""The AWX definitions shipped in extensions/awx cannot drift from the code they drive.

* Every VCLUSTER_* variable a module (argument spec fallbacks, direct reads) or an inventory
  plugin (its documented options) reads is injected by a credential type, unless it is one
  of the few set elsewhere (NOT_INJECTED, each with its reason); nothing is injected that
  nothing reads.
* An input feeding an option the code keeps out of logs (no_log, or a plugin's secret) is
  marked secret; choices match the option's choices; the types pass AWX's own checks.
* The job templates name the lifecycle playbooks, the project's wrappers import them, and
  hpc.vcluster.awx passes each awx.awx module only options that module documents.
"""
from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import basic
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from awx_credential import CredentialError, check_inputs, check_type, inject

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AWX = ROOT / "extensions" / "awx"
CREDENTIAL_TYPES = {t["name"]: t for t in yaml.safe_load((AWX / "credential_types.yml").read_text())["credential_types"]}
TEMPLATES = yaml.safe_load((AWX / "job_templates.yml").read_text())
SITE, FLEET = CREDENTIAL_TYPES["hpc.vcluster site"], CREDENTIAL_TYPES["hpc.vcluster fleet"]
# The lifecycle playbooks the issues name (11: update, rollback; 13: heal, reintegrate, reconcile, integration).
LIFECYCLE = {"deploy", "update", "rollback", "heal", "reintegrate", "reconcile", "integration", "destroy"}
# Read by the code but deliberately not injected by a credential, and why.
NOT_INJECTED = {
    "VCLUSTER_TOKEN_FILE": "a token file an outside process renews on a controller; in AWX the token is an input",
}
INVENTORY_SETTING = re.compile(r"^VCLUSTER_INVENTORY_(?!SITES$)")  # the source's own settings: its file or source_vars
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"))


class _Captured(Exception):
    def __init__(self, spec):
        super().__init__("captured")
        self.spec = spec


def module_specs() -> dict:
    """{module: argument_spec}, as each module's main() builds it."""
    specs = {}

    def capture(self, argument_spec, **kwargs):
        raise _Captured(argument_spec)

    original = basic.AnsibleModule.__init__
    basic.AnsibleModule.__init__ = capture
    try:
        for path in sorted((ROOT / "plugins" / "modules").glob("[a-z]*.py")):
            module = importlib.import_module(f"ansible_collections.hpc.vcluster.plugins.modules.{path.stem}")
            if not hasattr(module, "main"):
                continue  # documentation of an action plugin (vcluster_manifest): no site options
            try:
                module.main()
            except _Captured as captured:
                specs[path.stem] = captured.spec
    finally:
        basic.AnsibleModule.__init__ = original
    return specs


def spec_env(spec: dict, path: str = ""):
    """(variable, option path, no_log, choices) for every option of ``spec`` with an environment fallback."""
    for name, option in spec.items():
        fallback = option.get("fallback")
        if fallback and len(fallback) > 1:
            for variable in fallback[1]:
                yield variable, path + name, bool(option.get("no_log")), option.get("choices")
        if option.get("options"):
            yield from spec_env(option["options"], f"{path}{name}.")


def direct_reads() -> set:
    """VCLUSTER_* names the plugins read with os.environ.get / os.getenv / os.environ[...], and roles with lookup('env')."""
    found = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            args = []
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
                args = node.args[:1]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                args = [node.slice]
            found |= {a.value for a in args if isinstance(a, ast.Constant) and str(a.value).startswith("VCLUSTER_")}
    # roles that read the site's settings on the controller: lookup('ansible.builtin.env', 'VCLUSTER_...')
    for path in (ROOT / "roles").rglob("*.yml"):
        found |= set(re.findall(r"lookup\(\s*'(?:ansible\.builtin\.)?env'\s*,\s*'(VCLUSTER_[A-Z0-9_]+)'", path.read_text()))
    return found


def role_secret_reads() -> set:
    """VCLUSTER_* names a role reads as the fallback of an option it marks no_log (``iam_x or lookup('env', ...)``)."""
    found = set()
    for role in (ROOT / "roles").iterdir():
        specs = role / "meta" / "argument_specs.yml"
        if not specs.is_file():
            continue
        options = ((yaml.safe_load(specs.read_text()) or {}).get("argument_specs", {}).get("main", {}).get("options")
                   or {})
        hidden = {name for name, option in options.items() if isinstance(option, dict) and option.get("no_log")}
        for path in role.rglob("*.yml"):
            for name, variable in re.findall(
                    r"\b([a-z][a-z0-9_]*)\s+or\s+lookup\(\s*'(?:ansible\.builtin\.)?env'\s*,\s*'(VCLUSTER_[A-Z0-9_]+)'",
                    path.read_text()):
                if name in hidden:
                    found.add(variable)
    return found


@pytest.fixture(scope="module")
def plugin_options() -> dict:
    names = [f"hpc.vcluster.{p.stem}" for p in sorted((ROOT / "plugins" / "inventory").glob("[a-z]*.py"))]
    doc = subprocess.run([BIN / "ansible-doc", "--json", "-t", "inventory", *names], env=ENV, capture_output=True,
                         text=True, check=True)
    return {name: data["doc"]["options"] for name, data in json.loads(doc.stdout).items()}


@pytest.fixture(scope="module")
def read_by_code(plugin_options) -> dict:
    """{variable: [(where, option, secret, choices)]} for every VCLUSTER_* variable the code reads."""
    read = {}
    for module, spec in module_specs().items():
        for variable, option, secret, choices in spec_env(spec):
            read.setdefault(variable, []).append((module, option, secret, choices))
    for plugin, options in plugin_options.items():
        for option, doc in options.items():
            for entry in doc.get("env", []):
                secret = option in ("token", "client_secret") or "secret" in option
                read.setdefault(entry["name"], []).append((plugin, option, secret, doc.get("choices")))
    secrets = role_secret_reads()
    for variable in direct_reads():
        read.setdefault(variable, []).append(("code", variable, variable in secrets, None))
    return {k: v for k, v in read.items() if k.startswith("VCLUSTER_")}


def injected() -> dict:
    """{variable: [(credential type, template)]}."""
    out = {}
    for ctype in CREDENTIAL_TYPES.values():
        for variable, template in ctype["injectors"]["env"].items():
            out.setdefault(variable, []).append((ctype, template))
    return out


def inputs_of(template: str) -> set:
    return meta.find_undeclared_variables(ImmutableSandboxedEnvironment().parse(template)) - {"tower"}


def test_the_scan_sees_what_the_code_reads(read_by_code):
    # the modules' site and access options, a module's own option, direct reads, a plugin option
    for variable in ("VCLUSTER_SITE_KIND", "VCLUSTER_CLIENT_SECRET", "VCLUSTER_ALLOWED_LABELS", "VCLUSTER_UFM_PASSWORD",
                     "VCLUSTER_BOOT_IMAGES_URL", "VCLUSTER_IMS_PUBLIC_KEY", "VCLUSTER_INVENTORY_SITES"):
        assert variable in read_by_code, variable
    assert any(use[0] == "network_segment" and use[2] for use in read_by_code["VCLUSTER_UFM_PASSWORD"])


def test_every_variable_the_code_reads_is_injected(read_by_code):
    expected = {v for v in read_by_code if v not in NOT_INJECTED and not INVENTORY_SETTING.match(v)}
    assert expected - set(injected()) == set(), "read by the code, injected by no credential type"
    assert set(injected()) - set(read_by_code) == set(), "injected, but nothing reads it"
    assert set(NOT_INJECTED) <= set(read_by_code), "NOT_INJECTED names a variable nothing reads any more"


def test_secrets_are_marked_and_choices_match(read_by_code):
    for variable, uses in injected().items():
        secret = any(use[2] for use in read_by_code[variable])
        choices = {tuple(use[3]) for use in read_by_code[variable] if use[3]}
        for ctype, template in uses:
            fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
            for name in inputs_of(template):
                if secret:
                    assert fields[name].get("secret"), f"{ctype['name']}: {name} feeds {variable}, a secret"
                if choices and fields[name].get("type") != "boolean":
                    assert {tuple(fields[name].get("choices", ()))} == choices, f"{ctype['name']}: {name} choices"
    # an input that is a secret for AWX is masked in AWX; the code must hide its value too
    for ctype in CREDENTIAL_TYPES.values():
        for field in ctype["inputs"]["fields"]:
            if field.get("secret"):
                feeds = [v for v, t in ctype["injectors"]["env"].items() if field["id"] in inputs_of(t)]
                assert feeds and all(any(use[2] for use in read_by_code[v]) or v == "VCLUSTER_INVENTORY_SITES"
                                     for v in feeds), field["id"]


def test_types_pass_awx_checks():
    for ctype in CREDENTIAL_TYPES.values():
        check_type(ctype)
    broken = json.loads(json.dumps(SITE))
    broken["injectors"]["env"]["VCLUSTER_API_URL"] = "{{ api_ulr }}"
    with pytest.raises(Exception, match="api_ulr"):
        check_type(broken)
    reserved = json.loads(json.dumps(SITE))
    reserved["injectors"]["env"]["ANSIBLE_CONFIG"] = "{{ api_url }}"
    with pytest.raises(CredentialError, match="ANSIBLE_CONFIG is reserved"):
        check_type(reserved)


def test_injected_environment(tmp_path):
    env = inject(SITE, {"site_kind": "csm", "api_url": "https://api.example.org", "client_id": "admin-client",
                        "client_secret": "s3cr3t-value", "ca_bundle": "-----BEGIN CERTIFICATE-----\n"}, tmp_path)
    assert env["VCLUSTER_SITE_KIND"] == "csm" and env["VCLUSTER_CLIENT_SECRET"] == "s3cr3t-value"
    ca = Path(env["VCLUSTER_CA_PATH"])
    assert ca.parent == tmp_path / "env" and ca.read_text().startswith("-----BEGIN") and ca.stat().st_mode & 0o777 == 0o600
    # inputs not given are empty (the code's defaults apply): TLS verified, no token, no RBAC from token
    assert env["VCLUSTER_VALIDATE_CERTS"] == "" and env["VCLUSTER_TOKEN"] == "" and env["VCLUSTER_RBAC_FROM_TOKEN"] == ""
    assert env["VCLUSTER_CONTAINERS_CONF"] == ""
    env = inject(SITE, {"site_kind": "openchami", "api_url": "https://x", "insecure_skip_tls_verify": True,
                        "rbac_from_token": True}, tmp_path)
    assert env["VCLUSTER_VALIDATE_CERTS"] == "false" and env["VCLUSTER_RBAC_FROM_TOKEN"] == "true"
    assert env["VCLUSTER_CA_PATH"] == ""
    with pytest.raises(CredentialError, match="api_url: required for hpc.vcluster site"):
        inject(SITE, {"site_kind": "csm"}, tmp_path)
    with pytest.raises(CredentialError, match="site_kind: must be one of openchami, csm"):
        check_inputs(SITE, {"site_kind": "lab", "api_url": "https://x"})


def test_job_templates_cover_the_lifecycle():
    names = {t["name"] for t in TEMPLATES["job_templates"]}
    assert names == LIFECYCLE
    existing = {p.stem for p in (ROOT / "playbooks").glob("*.yml")}
    wrappers = {p.stem for p in (AWX / "project").glob("*.yml")}
    ready = {t["playbook"] for t in TEMPLATES["job_templates"]} & existing
    print("job templates with their playbook:", sorted(ready), "waiting for it:", sorted(names - ready))
    # a playbook of the collection has its project wrapper, and the wrapper imports it
    assert wrappers == ready
    for name in ready:
        play = yaml.safe_load((AWX / "project" / f"{name}.yml").read_text())
        assert play == [{"name": play[0]["name"], "ansible.builtin.import_playbook": f"hpc.vcluster.{name}"}]
    for workflow in TEMPLATES["workflows"]:
        assert set(workflow["nodes"]) <= names
    for schedule in TEMPLATES["schedules"]:
        assert schedule["job_template"] in names


def awx_tasks():
    for play in yaml.safe_load((ROOT / "playbooks" / "awx.yml").read_text()):
        for task in play["tasks"]:
            for key, args in task.items():
                if key.startswith("awx.awx."):
                    yield key, args


def test_awx_tasks_use_only_documented_options():
    modules = sorted({task[0] for task in awx_tasks()})
    assert {"awx.awx.credential_type", "awx.awx.job_template", "awx.awx.workflow_job_template",
            "awx.awx.inventory_source", "awx.awx.schedule"} <= set(modules)
    doc = subprocess.run([BIN / "ansible-doc", "--json", *modules], env=ENV, capture_output=True, text=True,
                         check=True)
    options = {name: data["doc"]["options"] for name, data in json.loads(doc.stdout).items()}
    for module, args in awx_tasks():
        known = set(options[module]) | {a for o in options[module].values() for a in o.get("aliases", [])}
        assert set(args) <= known, f"{module}: {sorted(set(args) - known)}"
    # the credential type module takes the definitions as they are
    assert {"name", "description", "kind", "inputs", "injectors"} >= set(SITE) and SITE["kind"] in \
        options["awx.awx.credential_type"]["kind"]["choices"]


def run_definitions(tree: Path, extra: dict) -> dict:
    """hpc.vcluster.awx --tags definitions (no AWX needed) from ``tree``; {task name: result}."""
    argv = [BIN / "ansible-playbook", tree / "playbooks" / "awx.yml", "--tags", "definitions", "-i", "localhost,",
            "-c", "local", "-e", json.dumps(extra)]
    proc = subprocess.run(argv, env=dict(ENV, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"), capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    start = 0 if proc.stdout.startswith("{\n") else proc.stdout.index("\n{\n") + 1  # profile_tasks prints around it
    out = json.JSONDecoder().raw_decode(proc.stdout[start:])[0]
    return {t["task"]["name"]: t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]}


AWX_VARS = {"vcluster_awx_name": "alps", "vcluster_awx_scm_url": "https://git.example.org/alps.git",
            "vcluster_awx_inventory_sources": [{"name": "alps nodes", "source_path": "inventories/alps.csm.yml"}]}


def test_awx_playbook_reads_the_definitions(tmp_path):
    # this collection as it is: the templates of its playbooks only, no workflow while one of its playbooks is missing
    results = run_definitions(ROOT, AWX_VARS)
    available = results["Find the lifecycle playbooks this collection has"]["ansible_facts"]["vcluster_awx_available"]
    existing = {p.stem for p in (ROOT / "playbooks").glob("*.yml")}
    assert {t["name"] for t in available} == LIFECYCLE & existing
    # a collection that has every playbook of the workflow: its nodes, chained on success
    tree = tmp_path / "collection"
    (tree / "playbooks").mkdir(parents=True)
    shutil.copy(ROOT / "playbooks" / "awx.yml", tree / "playbooks")
    shutil.copytree(AWX, tree / "extensions" / "awx")
    for name in ("deploy", "integration"):
        (tree / "playbooks" / f"{name}.yml").write_text("---\n[]\n")
    results = run_definitions(tree, AWX_VARS)
    composed = results["Compose the workflows whose job templates all exist"]["results"][0]["ansible_facts"]
    (workflow,) = composed["vcluster_awx_workflows"]
    nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
    assert list(nodes) == ["integration", "deploy"]
    assert nodes["integration"]["related"] == {"success_nodes": [{"identifier": "deploy"}]}
    assert nodes["deploy"]["unified_job_template"] == {"name": "alps vCluster deploy", "type": "job_template",
                                                       "organization": {"name": "Default"}}
    # the injectors reach awx.awx as AWX templates, not rendered by Ansible
    assert "Check the variables" in results
    bad = subprocess.run([BIN / "ansible-playbook", ROOT / "playbooks" / "awx.yml", "--tags", "definitions", "-i",
                          "localhost,", "-c", "local", "-e", json.dumps({"vcluster_awx_name": "alps"})], env=ENV,
                         capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "needs vcluster_awx_name" in bad.stdout


def test_awx_playbook_syntax():
    proc = subprocess.run([BIN / "ansible-playbook", "--syntax-check", ROOT / "playbooks" / "awx.yml", "-i", "localhost,"],
                          env=ENV, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
