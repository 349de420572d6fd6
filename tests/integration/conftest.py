"""Session fixtures of the integration tests: one real lab for the whole session (see vc_lab.py),
and the container stack vCluster deployed on it once (``stack``), with the secrets and the external
vService (served over HTTPS by ``ext_git``) that the trust-boundary tests look at."""
from __future__ import annotations

import base64
import copy
import functools
import http.server
import json
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vc_lab import NODES, PLAYBOOK, ROOT, Lab, failed_messages, free_port, podman, run_site_playbook
from vcluster_lab.nmn_claim import SECOND_SITE, claim_nmn
from vcluster_lab.tls import server_context


#: This session's builds carry this owner (the image module and the lab copy VCLUSTER_BUILD_OWNER into
#: their build containers' labels); set before any lab or playbook starts, inherited by every subprocess.
BUILD_OWNER = os.environ.setdefault("VCLUSTER_BUILD_OWNER", "pytest-" + secrets.token_hex(4))


def _build_containers() -> dict[str, str]:
    """This session's build containers (image module ``vcbuild-*`` and the lab's site-repository builders):
    id -> name and what it built. Other checkouts building on the machine at the same time carry
    another owner and are not counted."""
    out = podman("ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Labels}}",
                 "--filter", f"label=io.vcluster.build.owner={BUILD_OWNER}", check=False)
    return {line.split()[0]: line.split(None, 1)[1] for line in out.stdout.splitlines() if line.strip()}


def _lab_left_nothing(instance: Lab, down, builds_before: dict[str, str]) -> None:
    """The lab's containers are gone, and so are the build containers this session's runs made
    (a build still running gets two minutes to finish before it counts as left behind)."""
    left = podman("ps", "-a", "--format", "{{.Names}}", "--filter", f"name=^{instance.prefix}-", check=False)
    assert down.returncode == 0, down.stderr
    assert not left.stdout.strip(), f"the lab left containers behind: {left.stdout}"
    deadline = time.monotonic() + 120
    while (builds := set(_build_containers()) - set(builds_before)) and time.monotonic() < deadline:
        time.sleep(5)
    left_builds = {k: v for k, v in _build_containers().items() if k in builds}
    assert not left_builds, f"image builds left containers behind: {left_builds}"


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    reuse = os.environ.get("VCLUSTER_TEST_LAB_HOME")
    if reuse:
        home = Path(reuse)
        state = json.loads((home / "lab.json").read_text()) if (home / "lab.json").exists() else {}
        instance = Lab(home, state.get("prefix") or os.environ.get("VCLUSTER_LAB_PREFIX", "vclab"),
                       int(state.get("port") or 28443))
        instance.run("status")
        yield instance
        return
    home = tmp_path_factory.mktemp("lab") / "home"
    instance = Lab(home, "vcmt" + secrets.token_hex(3), free_port())
    builds_before = _build_containers()
    with claim_nmn():
        try:
            instance.run("up", "--nodes", str(NODES), "--service-nodes", "1", "--port", str(instance.port))
            yield instance
        finally:
            down = instance.run("down", check=False)
    _lab_left_nothing(instance, down, builds_before)


#: The stack vCluster's nodes: added to the session's lab for it, so the tests that use the
#: lab's first nodes (x1000c0s0-3, x3000c0s0) never meet it.
STACK_NODES = {"service": ["x3000c0s1b0n0"], "compute": ["x1000c0s4b0n0", "x1000c0s5b0n0"]}
#: The stack's compute nodes can mount uenv images (CAP_SYS_ADMIN and the loop devices, docs/lab.md):
#: a lab setting read when the lab makes a node, so set before the session's lab starts.
os.environ.setdefault("VCLUSTER_LAB_UENV_NODES", ",".join(STACK_NODES["compute"]))
STACK_MANIFEST = ROOT / "examples" / "vclusters" / "stack.yml"


#: The stack's Slurm secrets: the munge key as an Ansible Vault value of its manifest (the vault password
#: in a 0600 file), the accounting database's password as an environment reference. test_boundary_manifest.py
#: looks for them (and the lab's own credentials) in the stack's -vvvv deploy log.
MUNGE_KEY = base64.b64encode(secrets.token_bytes(64)).decode()
DB_PASS = "it-" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
VAULT_PASS = "vault-" + secrets.token_hex(12)
#: the external vService's role: the version that runs is written where its meta/vservice.yml watches
EXT_PROBE_FILE = "/etc/vcluster-ext-probe"


@pytest.fixture(scope="session")
def ext_git(lab, tmp_path_factory):
    """An external vService role (vc_ext_probe) with tags v1 and v2 in a bare repository served over HTTPS
    with the lab's CA (git's dumb HTTP protocol: static files, the default transports, no relaxed policy).
    Its commits by tag, its URL, and the environment a deploy needs to fetch it."""
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
        # what the lifecycle hashes on each node: an unchanged re-run skips the stack's vServices
        (work / "meta" / "vservice.yml").write_text(
            "---\nversion: \"%s\"\ndescription: probe\nafter: []\nwatch:\n  files: [%s]\n" % (version, EXT_PROBE_FILE))
        (work / "tasks" / "main.yml").write_text(
            "---\n- name: Probe | the version that runs\n  ansible.builtin.copy:\n"
            "    content: \"%s {{ vc_ext_probe_label }}\\n\"\n    dest: %s\n    mode: \"0644\"\n"
            % (version, EXT_PROBE_FILE))
        git("add", "-A")
        git("-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-q", "-m", version)
        git("tag", version)
        commits[version] = git("rev-parse", "HEAD")
    served = tmp / "srv"
    served.mkdir()
    git("clone", "-q", "--bare", str(work), str(served / "vc_ext_probe.git"), cwd=tmp)
    git("update-server-info", cwd=served / "vc_ext_probe.git")

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


def ext_probe(version: str, url: str) -> dict:
    """The external vService of the stack, at ``version`` of the repository at ``url``."""
    return {"name": "vc_ext_probe", "source": {"git": url, "version": version}, "nodes": ["compute"],
            "after": ["slurm"], "config": {"vc_ext_probe_label": "it"}}


def vault_encrypt(text: str, password_file: Path) -> str:
    proc = subprocess.run([str(Path(PLAYBOOK).parent / "ansible-vault"), "encrypt_string", "--vault-password-file",
                           str(password_file), "--name", "x", text], capture_output=True, text=True, check=True)
    return yaml.safe_load(proc.stdout.replace("!vault", "", 1))["x"]


class Stack:
    """The deployed stack: its manifest file, the first deploy's stats, and its nodes' addresses.

    Every playbook run on it gets ``args`` (the vault password file) and ``env`` (the external vService's
    fetch, the database password's reference)."""

    def __init__(self, lab: Lab, manifest: Path, stats: dict, workdir: Path, output: str = "",
                 args: tuple = (), env: dict | None = None, render=None):
        self.lab, self.manifest, self.stats, self.workdir = lab, manifest, stats, workdir
        self.args, self.env = args, dict(env or {})
        #: render(external=None): the manifest's YAML text (``external``: the external vService's entry, v1's by default)
        self.render = render
        #: the first deploy's output, at -vvvv (what an operator's log would hold)
        self.output = output
        #: checks a test registers to run after the stack is destroyed (e.g. its DNS zone is gone)
        self.after_destroy: list = []
        #: the playbook runs of ``run`` so far (their logs are numbered)
        self.runs = 0
        reply = lab.session().get(lab.url + "/lab/v1/nodes", timeout=30)
        reply.raise_for_status()
        ips = {n["xname"]: n["ip"] for n in reply.json()["nodes"]}
        self.ips = {group: [ips[x] for x in xnames] for group, xnames in STACK_NODES.items()}

    def deploy(self) -> dict:
        """hpc.vcluster.deploy of the stack again (``run``'s result)."""
        return self.run("deploy")

    def run(self, playbook: str, check: bool = False, diff: bool = False, extra_vars: dict | None = None) -> dict:
        """hpc.vcluster.<playbook> on the stack's manifest, as an operator runs it (run_site_playbook's result).

        Each run's whole output is kept in the stack's work directory, named in ``run["log"]`` (for failure messages)."""
        run = run_site_playbook(self.lab, "openchami", playbook, self.workdir, check=check, diff=diff,
                                extra_vars={"vcluster_manifest": str(self.manifest), **(extra_vars or {})},
                                args=self.args, env=self.env)
        self.runs += 1
        log = self.workdir / f"{playbook}-{self.runs}.out"
        log.write_text(run["output"])
        run["log"] = str(log)
        return run

    def ssh(self, group: str, command: str, index: int = 0, timeout: float = 300):
        return self.lab.ssh(self.ips[group][index], command, timeout=timeout)

    def user_ssh(self, user: str, group: str, command: str, index: int = 0, timeout: float = 120):
        """``command`` run over SSH as directory user ``user`` on a node of ``group``, with the user's own key."""
        key = Path(self.lab.env()["VCLUSTER_LAB_LDAP_USER_KEYS_DIR"]) / user
        argv = ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=30",
                f"{user}@{self.ips[group][index]}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def stack(lab, ext_git, tmp_path_factory):
    """The container stack (examples/vclusters/stack.yml) deployed once by hpc.vcluster.deploy, on nodes of its own,
    with its Slurm secrets from an Ansible Vault value and an environment reference, and the external vService
    vc_ext_probe at v1 (``ext_git``).

    Other capabilities add their vServices to the manifest and their tests use this fixture; it
    is destroyed at the end of the session.
    """
    workdir = tmp_path_factory.mktemp("stack")
    # the secrets stack.yml's firecrest vService references (the controller resolves them; the second
    # deploys of the session see the same): the service's SSH key, made for the session, and its
    # service account's secret at the lab's IdP (the Keycloak realm's client, the CSM face's)
    os.environ.setdefault("VCLUSTER_SECRET_STACK_FIRECREST_SSH_KEY", Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode())
    os.environ["VCLUSTER_SECRET_STACK_FIRECREST_CLIENT"] = lab.env("csm")["VCLUSTER_CLIENT_SECRET"]
    reply = lab.session().post(lab.url + "/lab/v1/nodes", timeout=900, json={
        "compute": max(NODES, 4) + 2, "service": 2, "power_on": True, "wait": True})
    reply.raise_for_status()
    password_file = workdir / "vault-pass"
    password_file.write_text(VAULT_PASS + "\n")
    password_file.chmod(0o600)
    cipher = vault_encrypt(MUNGE_KEY, password_file)
    base = yaml.safe_load(STACK_MANIFEST.read_text())
    base["image"]["recipe"] = str((STACK_MANIFEST.parent / base["image"]["recipe"]).resolve())

    def render(external: dict | None = None) -> str:
        """The stack's manifest as YAML text: its nodes pinned, the munge key as a !vault value, the database
        password as an environment reference, the external vService (v1 unless ``external`` says)."""
        doc = copy.deepcopy(base)
        doc["nodes"] = {group: {"nodes": xnames} for group, xnames in STACK_NODES.items()}
        slurm = next(v for v in doc["vservices"] if v["name"] == "slurm")
        slurm["config"].update(dbd_storage_pass={"secret": {"env": "VCLUSTER_SECRET_IT_DBPASS"}},
                               munge_key_b64="MUNGE_KEY_PLACEHOLDER")
        doc["vservices"].append(external or ext_probe("v1", ext_git["url"]))
        lines = []
        for line in yaml.safe_dump(doc, sort_keys=False, default_flow_style=False).splitlines():
            if "MUNGE_KEY_PLACEHOLDER" in line:
                head = line[:line.index("munge_key_b64")]
                lines.append(head + "munge_key_b64: !vault |")
                lines.extend(" " * (len(head) + 2) + part for part in cipher.strip().splitlines())
            else:
                lines.append(line)
        return "\n".join(lines) + "\n"
    path = workdir / "stack.yml"
    path.write_text(render())
    args = ("--vault-password-file", str(password_file))
    env = dict(ext_git["env"], VCLUSTER_SECRET_IT_DBPASS=DB_PASS)
    # at -vvvv, as an operator chasing a problem runs it: the tests look for the vServices' secrets in this output
    deployed = run_site_playbook(lab, "openchami", "deploy", workdir, extra_vars={"vcluster_manifest": str(path)},
                                 args=("-vvvv", *args), env=env)
    (workdir / "deploy-vvvv.out").write_text(deployed["output"])
    assert deployed["rc"] == 0, f"deploying the stack failed: {failed_messages(deployed)} (log: {workdir}/deploy-vvvv.out)"
    instance = None
    try:
        instance = Stack(lab, path, deployed["stats"], workdir, deployed["output"], args=args, env=env, render=render)
        yield instance
    finally:
        destroyed = run_site_playbook(lab, "openchami", "destroy", workdir, extra_vars={"vcluster_manifest": str(path)},
                                      args=args, env=env)
        assert destroyed["rc"] == 0, f"destroying the stack failed: {failed_messages(destroyed)}"
        for check in instance.after_destroy if instance is not None else []:
            check()


@pytest.fixture(scope="session")
def second_site(lab, tmp_path_factory):
    """A second lab site on this machine, beside ``lab``: its own home, prefix, port, site name and
    management network (SECOND_SITE, 10.251.0.0/16), one compute node. Its range is claimed under the
    lock ``lab`` holds (the claim nests), and it goes down before ``lab`` does."""
    home = tmp_path_factory.mktemp("site-b") / "home"
    instance = Lab(home, "vcmt" + secrets.token_hex(3), free_port())
    builds_before = _build_containers()
    with claim_nmn(network=SECOND_SITE):
        try:
            instance.run("up", "--nodes", "1", "--service-nodes", "0", "--port", str(instance.port),
                         "--mgmt-network", str(SECOND_SITE), "--site-name", "site-b",
                         # site services have fixed addresses in the first site's range
                         "--site-services", "none")
            yield instance
        finally:
            down = instance.run("down", check=False)
    _lab_left_nothing(instance, down, builds_before)
