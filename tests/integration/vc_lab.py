"""A real lab for the integration tests, and running real playbooks against it.

The ``lab`` fixture (conftest.py) brings up ``vcluster-lab up --nodes 4`` in a private home, prefix and
port (``.home``, ``.url``, ``.prefix``, ``.env(face)``), and takes it down at the end,
checking that nothing with its labels is left. The lab's nodes use the CSM NMN range
10.252.0.0/16, which podman lets only one network on the machine have: the fixture
claims it with ``vcluster_lab.nmn_claim`` (a lock shared with tests/lab, orphaned test labs
reclaimed, someone else's lab waited for up to ``VCLUSTER_TEST_NMN_WAIT`` seconds).
``VCLUSTER_TEST_LAB_HOME`` reuses a lab that already runs (it is
then left running), which makes iterating on a test fast.

``playbook(lab, face, text)`` runs ``ansible-playbook`` as a user would (the collection
from ``.collections``, the project's ansible.cfg, the site from ``vcluster-lab env``),
with the JSON callback, and returns each task's result by task name.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLI = str(BIN / "vcluster-lab") if (BIN / "vcluster-lab").exists() else shutil.which("vcluster-lab")
PLAYBOOK = str(BIN / "ansible-playbook") if (BIN / "ansible-playbook").exists() else shutil.which("ansible-playbook")
CONTAINERS_CONF = str(ROOT / "lab" / "containers.conf")
NODES = 4
# The lab's tokens live an hour, as OpenCHAMI's do; a test session lasts longer than that, so
# the client environment (which carries the token) is fetched again when it is older than this.
ENV_MAX_AGE = 20 * 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, env=env)


class Lab:
    """A running lab: its home, URL, prefix and client environments."""

    def __init__(self, home: Path, prefix: str, port: int):
        self.home, self.prefix, self.port = Path(home), prefix, port
        self.url = f"https://127.0.0.1:{port}"
        self.cli_env = dict(os.environ, VCLUSTER_LAB_HOME=str(home), VCLUSTER_LAB_PREFIX=prefix)
        self._env: dict[str, tuple[float, dict]] = {}

    def run(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([CLI, *args], capture_output=True, text=True, env=self.cli_env, timeout=timeout,
                              check=False)
        if check:
            assert proc.returncode == 0, f"vcluster-lab {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    def env(self, face: str = "openchami") -> dict:
        """The client environment of ``face`` (VCLUSTER_*, the token or client credentials, CA, SSH key).

        Fetched again once older than ``ENV_MAX_AGE``: its token expires after an hour, and the
        integration session runs longer (CI of 42630fb failed on that, an hour in).
        """
        fetched, env = self._env.get(face, (0.0, None))
        if env is None or time.monotonic() - fetched > ENV_MAX_AGE:
            env = json.loads(self.run("env", "--face", face, "--format", "json").stdout)
            self._env[face] = (time.monotonic(), env)
        return dict(env)

    @property
    def token_variable(self) -> str:
        """The variable `vcluster-lab env` puts the OpenCHAMI face's token in: <SITE_NAME>_ACCESS_TOKEN."""
        return self.env()["VCLUSTER_SITE_NAME"].upper().replace("-", "_") + "_ACCESS_TOKEN"

    def credentials(self) -> dict:
        return json.loads((self.home / "credentials.json").read_text())

    def user_token(self, username: str) -> str:
        """A Keycloak password-grant token of a lab user (realm roles = the labels it may manage)."""
        user = self.credentials()["users"][username]
        reply = requests.post(self.url + "/keycloak/realms/shasta/protocol/openid-connect/token",
                              data={"grant_type": "password", "client_id": "shasta", "username": username,
                                    "password": user["password"]},
                              verify=self.env()["VCLUSTER_CA_PATH"], timeout=30)
        reply.raise_for_status()
        return reply.json()["access_token"]

    def session(self, face: str = "openchami") -> requests.Session:
        """An HTTPS session with a token of ``face``, for checking what the API holds."""
        env = self.env(face)
        s = requests.Session()
        s.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment replaces the lab's CA
        s.verify = env["VCLUSTER_CA_PATH"]
        if face == "openchami":
            token = env[self.token_variable]
        else:
            resp = s.post(self.url + "/keycloak/realms/shasta/protocol/openid-connect/token",
                          data={"grant_type": "client_credentials"},
                          auth=(env["VCLUSTER_CLIENT_ID"], env["VCLUSTER_CLIENT_SECRET"]), timeout=30)
            resp.raise_for_status()
            token = resp.json()["access_token"]
        s.headers["Authorization"] = f"Bearer {token}"
        return s

    def container(self, xname: str) -> str:
        return f"{self.prefix}-{xname}"

    def ssh(self, ip: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        key = self.env()["VCLUSTER_LAB_SSH_KEY"]
        argv = ["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", f"ConnectTimeout={int(timeout)}",
                f"root@{ip}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, check=False)

    def wait_ssh(self, ip: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = self.ssh(ip, "systemctl is-system-running --wait >/dev/null 2>&1; hostname", timeout=20)
            if proc.returncode == 0:
                return
            assert time.monotonic() < deadline, f"{ip} does not answer SSH: {proc.stderr}"
            time.sleep(1)


def run_playbook(lab: Lab, face: str, name: str, manifest: Path, tmp_path: Path, *args: str, env: dict | None = None,
                 callback: str = "ansible.posix.json") -> tuple[int, dict, str]:
    """hpc.vcluster.<name> on the manifest file ``manifest`` (run_site_playbook); (rc, stats, output).

    ``args`` are more command-line arguments (``--check``, ``-vvvv``...); ``callback`` the
    stdout callback (stats are only read from the JSON one).
    """
    run = run_site_playbook(lab, face, name, tmp_path, extra_vars={"vcluster_manifest": str(manifest)}, args=args,
                            env=env, callback=callback)
    return run["rc"], run["stats"], run["output"]


def failures(output: str) -> list[str]:
    """The msg of every failed task in a JSON-callback output."""
    try:
        doc = json.JSONDecoder().raw_decode(output[output.index("{"):])[0]
    except ValueError:
        return [output[-2000:]]
    msgs = []
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            for result in task.get("hosts", {}).values():
                if result.get("failed"):
                    msgs.append(str(result.get("msg")))
    return msgs


def labels(lab: Lab, face: str) -> list[str]:
    prefix = "/hsm/v2" if face == "openchami" else "/apis/smd/hsm/v2"
    reply = lab.session(face).get(lab.url + prefix + "/groups/labels", timeout=30)
    reply.raise_for_status()
    return reply.json()


def lab_nodes(lab: Lab) -> dict:
    """The lab's nodes by xname: power, boot image, VLANs, IP (``/lab/v1/nodes``: podman's view)."""
    reply = lab.session().get(lab.url + "/lab/v1/nodes", timeout=30)
    reply.raise_for_status()
    return {n["xname"]: n for n in reply.json()["nodes"]}


def restore_nodes(lab: Lab, compute: int = NODES, service: int = 1) -> None:
    """Leave the lab as `up` made it: destroy powered the nodes off and removed their boot parameters."""
    reply = lab.session().post(lab.url + "/lab/v1/nodes", timeout=900, json={
        "compute": compute, "service": service, "power_on": True, "wait": True, "image": "localhost/vclab-base:bookworm"})
    reply.raise_for_status()
    reply = lab.session().get(lab.url + "/lab/v1/nodes", timeout=30)
    reply.raise_for_status()
    for node in reply.json()["nodes"]:
        lab.wait_ssh(node["ip"])


def site_state(lab: Lab) -> dict:
    """Everything a deploy could change on the site, for before/after comparisons.

    SMD groups and memberships, BSS boot parameters, PCS power, the fabric manager's VLANs,
    port policies and edge ports, UFM's PKeys, and per node what podman runs (power, boot
    image, VLAN networks, the container's start time: a restart shows).
    """
    session = lab.session()

    def get(path, **params):
        reply = session.get(lab.url + path, params=params, timeout=60)
        reply.raise_for_status()
        return reply.json()

    def fabric(path):
        """A fabric manager collection without its documents' update times (the lab stamps ports at every read)."""
        def strip(value):
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if k != "documentUpdateTimeMicros"}
            if isinstance(value, list):
                return [strip(v) for v in value]
            return value
        return strip(get(path, expand="true"))

    power = get("/power-control/v1/power-status")["status"]
    ufm = lab.credentials()["ufm"]
    pkeys = requests.get(lab.url + "/ufmRest/resources/pkeys", params={"guids_data": "true"}, timeout=60,
                         auth=(ufm["username"], ufm["password"]), verify=lab.env()["VCLUSTER_CA_PATH"])
    pkeys.raise_for_status()
    nodes = lab_nodes(lab)
    started = {}
    for xname in nodes:
        proc = podman("inspect", "--format", "{{.State.StartedAt}}", lab.container(xname), check=False)
        started[xname] = proc.stdout.strip() if proc.returncode == 0 else None
    return {
        "groups": get("/hsm/v2/groups"),
        "memberships": get("/hsm/v2/memberships"),
        "bss": get("/boot/v1/bootparameters"),
        "power": sorted((p["xname"], p["powerState"]) for p in power),
        "vlans": fabric("/apis/fabric-manager/fabric/vlans"),
        "port_policies": fabric("/apis/fabric-manager/fabric/port-policies"),
        "ports": fabric("/apis/fabric-manager/fabric/ports"),
        "pkeys": pkeys.json(),
        "nodes": {x: {k: n[k] for k in ("power", "boot_image", "vlans", "state", "flag")} for x, n in nodes.items()},
        "containers_started": started,
    }


def playbook(lab: Lab, face: str, text: str, *, check: bool = False, diff: bool = False, extra_vars: dict | None = None,
             env: dict | None = None, expect_failure: bool = False, path: str | None = None) -> dict:
    """Run a playbook (``text``, or the file ``path``) against the lab through ``face``.

    Returns ``{"tasks": {task name: result}, "stats": ..., "rc": ...}``; asserts success
    unless ``expect_failure``.
    """
    full_env = dict(os.environ)
    full_env.update(lab.env(face))
    full_env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "CONTAINERS_CONF": CONTAINERS_CONF, "ANSIBLE_HOST_KEY_CHECKING": "false",
        "VCLUSTER_CONTAINERS_CONF": CONTAINERS_CONF,
    })
    full_env.update(env or {})
    tmp = None
    if path is None:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="vc-it-", delete=False)
        tmp.write(text)
        tmp.close()
        path = tmp.name
    argv = [PLAYBOOK, path, "-i", "localhost,", "-c", "local"]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, cwd=str(ROOT), timeout=1800,
                              check=False)
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    try:
        # the JSON document starts with a line holding "{"; profile_tasks (ansible.cfg) may print around it
        start = proc.stdout.index("\n{\n") + 1 if not proc.stdout.startswith("{\n") else 0
        out = json.JSONDecoder().raw_decode(proc.stdout[start:])[0]
    except ValueError:
        raise AssertionError(f"ansible-playbook output is not JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    tasks = {}
    for play in out.get("plays", []):
        for task in play.get("tasks", []):
            results = task.get("hosts", {})
            # a role's task is "<role> : <name>"; tests name the task
            tasks[task["task"]["name"].split(" : ", 1)[-1]] = next(iter(results.values())) if len(results) == 1 else results
    result = {"tasks": tasks, "stats": out.get("stats", {}), "rc": proc.returncode, "stderr": proc.stderr}
    if not expect_failure:
        failed = {name: r.get("msg") for name, r in tasks.items() if isinstance(r, dict) and r.get("failed")}
        assert proc.returncode == 0, f"playbook failed: {failed or proc.stderr}"
    return result


def site_play(tasks_yaml: str, name: str = "layer-1 modules against the lab") -> str:
    """A play on localhost whose tasks take the site from the environment (vcluster-lab env)."""
    indented = "\n".join("    " + line if line.strip() else line for line in tasks_yaml.strip("\n").splitlines())
    return f"""---
- name: {name}
  hosts: localhost
  gather_facts: false
  vars:
    # the modules need requests: run them with the controller's own Python
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
{indented}
"""


def run_site_playbook(lab, face: str, name: str, tmp_path: Path, extra_vars: dict | None = None, limit: str | None = None,
                      check: bool = False, diff: bool = False, args: tuple = (), env: dict | None = None,
                      callback: str = "ansible.posix.json") -> dict:
    """ansible-playbook hpc.vcluster.<name> with the lab's inventory source of ``face``, as an operator runs it.

    ``args``: more command-line arguments (``-vvvv``, ``--vault-password-file``...); ``env``: more
    environment; ``callback``: the stdout callback (stats and tasks are read from a JSON one only).
    Returns ``{"rc", "stats", "tasks" (name -> {host: result}), "output", "seconds"}``.
    """
    inventory = tmp_path / f"lab.{face}.yml"
    if not inventory.exists():
        inventory.write_text(lab.run("inventory", "--face", face).stdout)
    full_env = dict(os.environ)
    full_env.update(lab.env(face))
    full_env.update({"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
                     "ANSIBLE_STDOUT_CALLBACK": callback, "CONTAINERS_CONF": CONTAINERS_CONF,
                     "VCLUSTER_CONTAINERS_CONF": CONTAINERS_CONF, "ANSIBLE_HOST_KEY_CHECKING": "false",
                     "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts")})
    full_env.update(env or {})
    argv = [PLAYBOOK, "-i", str(inventory), f"hpc.vcluster.{name}", *args]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if limit:
        argv += ["--limit", limit]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, cwd=str(tmp_path), timeout=3000,
                          check=False)
    seconds = time.monotonic() - started
    keep = os.environ.get("VCLUSTER_TEST_KEEP_RUNS")
    if keep:  # a directory: each run's output is kept there, to read task times and failures afterwards
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{time.strftime('%H%M%S')}-{name}-{face}{'-check' if check else ''}.out").write_text(
            proc.stdout + proc.stderr)
    out = {}
    if callback.endswith("json"):
        try:
            # the document starts on a line of its own; at -vvvv, lines with braces come before it
            start = 0 if proc.stdout.startswith("{\n") else proc.stdout.find("\n{\n") + 1 or proc.stdout.index("{")
            out = json.JSONDecoder().raw_decode(proc.stdout[start:])[0]
        except ValueError:
            out = {}
    tasks: dict = {}
    for play in out.get("plays", []):
        for task in play.get("tasks", []):
            name_ = task["task"]["name"].split(" : ", 1)[-1]
            tasks.setdefault(name_, {}).update(task.get("hosts", {}))
    return {"rc": proc.returncode, "stats": out.get("stats", {}), "tasks": tasks, "output": proc.stdout + proc.stderr,
            "seconds": seconds}


def failed_messages(result: dict) -> list[str]:
    """The msg of every failed task of a run_site_playbook result."""
    msgs = [f"{name} on {host}: {r.get('msg')}" for name, hosts in result["tasks"].items() for host, r in hosts.items()
            if isinstance(r, dict) and r.get("failed")]
    return msgs or [result["output"][-3000:]]


def debug_messages(result: dict, task: str) -> str:
    """The msg of every host's result of a debug task of a run_site_playbook result, as JSON text to search."""
    return json.dumps([r.get("msg") for r in result["tasks"].get(task, {}).values()])
