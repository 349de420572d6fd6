"""Users of the vCluster without an SSH session: FirecREST v2, slurmrestd, and Slurm's accounting.

On the stack vCluster (conftest.py ``stack``: examples/vclusters/stack.yml), whose slurm vService
keeps accounting (slurmdbd) and serves slurmrestd (JWT), and whose firecrest vService runs FirecREST
v2 on the service node, configured from the lab's site settings (``vcluster-lab env``:
VCLUSTER_FIRECREST_*): the lab's Keycloak realm as the site IdP (JWKS and token endpoint, which the
nodes reach on the management network's gateway), the site repository's source archive and pinned
index, and the host certificate the lab's PKI puts on every node (/etc/vcluster-lab/tls). Its login
node is the first compute node (homes are node-local on this vCluster).

- pyfirecrest 3.10 (on the controller, from the site index, pinned with hashes:
  molecule/firecrest/files/pyfirecrest-requirements.txt) with alice's token from the lab's token
  service lists the system (its health checks pass), submits a batch job, follows it to COMPLETED
  and reads its output file; an expired token, one signed with another key under the realm's key
  id, and one of another issuer (the OpenCHAMI face's) are refused with 401;
- ``sacct``, as alice, shows her job;
- slurmrestd answers alice's request with her token from ``scontrol token`` (ping, jobs), and
  refuses one without a token and one with a forged token;
- the firecrest vService's secrets, and Slurm's (slurmdbd's database password, the JWT key, the
  munge key), are in no output of the stack's first deploy, which runs at -vvvv.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vc_lab import ROOT
from vcluster_lab.tokens import Tokens

SYSTEM = "stack"                     # the vCluster's name: FirecREST's system
LOGIN = "nid000005"                  # firecrest login_host in stack.yml: the first compute node
HEALTH_USER = "service-account-admin-client"  # the IdP's client-credentials account (client admin-client)
PYFIRECREST_REQUIREMENTS = ROOT / "molecule" / "firecrest" / "files" / "pyfirecrest-requirements.txt"
RESTD_PORT = 6820

CLIENT = r'''
"""pyfirecrest against the stack's FirecREST: argv URL CA SYSTEM TOKENS_DIR LOGIN. One JSON line."""
import json, sys, time
from pathlib import Path
from firecrest import FirecrestException
from firecrest.v2 import Firecrest

URL, CA, SYSTEM, TOKENS, LOGIN = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5]
MARK = "hello from FirecREST on %s" % SYSTEM
seen = {}


class Token:
    def __init__(self, name):
        self.token = (TOKENS / name).read_text().strip()

    def get_access_token(self):
        return self.token


def done(ok, **more):
    print(json.dumps({"ok": ok, **seen, **more}, default=str))
    sys.exit(0 if ok else 1)


alice = Firecrest(firecrest_url=URL, authorization=Token("alice"), verify=CA)
deadline = time.monotonic() + 240
while True:
    systems = alice.systems()
    mine = [s for s in systems if s["name"] == SYSTEM]
    if not mine:
        done(False, error="system %s not listed" % SYSTEM, systems=[s["name"] for s in systems])
    health = mine[0].get("servicesHealth") or []
    if health and all(h.get("healthy") for h in health):
        break
    if time.monotonic() > deadline:
        done(False, error="the system's health checks do not pass", health=health)
    time.sleep(3)
seen["systems"] = [s["name"] for s in systems]
seen["health"] = sorted("%s %s" % (h.get("serviceType"), h.get("path") or "") for h in health)

script = ("#!/bin/bash\n#SBATCH --job-name=fc-users\n#SBATCH --nodelist=%s\n"
          "#SBATCH --output=/home/alice/fc-job-%%j.out\necho '%s'\nid -un\nhostname\n") % (LOGIN, MARK)
job = alice.submit(SYSTEM, working_dir="/home/alice", script_str=script)
jobid = str(job["jobId"])
seen["jobid"] = jobid
state, states = None, []
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    info = alice.job_info(SYSTEM, jobid)
    state = (info[0].get("status") or {}).get("state") if info else None
    if not states or states[-1] != state:
        states.append(state)
    if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"):
        break
    time.sleep(2)
seen["states"] = states
if state != "COMPLETED":
    done(False, error="job %s ended %s" % (jobid, state))
seen["output"] = alice.view(SYSTEM, "/home/alice/fc-job-%s.out" % jobid).strip().splitlines()

for name in ("expired", "foreign", "other-issuer"):
    try:
        Firecrest(firecrest_url=URL, authorization=Token(name), verify=CA).systems()
    except FirecrestException as exc:
        seen["refused_" + name] = [getattr(r, "status_code", None) for r in getattr(exc, "responses", [])]
    else:
        seen["refused_" + name] = "accepted"
done(True)
'''


def _service_public_key() -> str:
    key = serialization.load_ssh_private_key(os.environ["VCLUSTER_SECRET_STACK_FIRECREST_SSH_KEY"].encode(), None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.fixture(scope="module")
def login_node(stack):
    """What the site gives the service's key on the login node (the first compute node): alice's
    authorized key, and the health checks' account (the IdP's client-credentials user), as a site
    provisions its service accounts. Taken back at the end."""
    users = ["alice", HEALTH_USER]
    script = f"""set -e
id {HEALTH_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash {HEALTH_USER}
for u in {' '.join(users)}; do
  home=$(getent passwd "$u" | cut -d: -f6)
  test -d "$home" || mkhomedir_helper "$u" 0077
  install -d -m 0700 -o "$u" -g "$(id -gn "$u")" "$home/.ssh"
  printf '%s\\n' '{_service_public_key()}' > "$home/.ssh/authorized_keys"
  chown "$u:" "$home/.ssh/authorized_keys"; chmod 0600 "$home/.ssh/authorized_keys"
done"""
    proc = stack.ssh("compute", script, index=0, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield LOGIN
    stack.ssh("compute", f"rm -f /home/alice/.ssh/authorized_keys; userdel -r {HEALTH_USER} 2>/dev/null; true", index=0)


@pytest.fixture(scope="module")
def pyfirecrest(tmp_path_factory, stack) -> str:
    """A Python environment with pyfirecrest, from the site's index (pinned, hashes checked): its python."""
    repo = stack.lab.env()["VCLUSTER_FIRECREST_SITE_REPOSITORY_URL"]
    venv = tmp_path_factory.mktemp("pyfirecrest") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    host = repo.split("//", 1)[1].split("/", 1)[0].split(":", 1)[0]
    env = dict(os.environ, NO_PROXY=",".join(filter(None, [os.environ.get("NO_PROXY"), host])),
               no_proxy=",".join(filter(None, [os.environ.get("no_proxy"), host])))
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "--quiet", "--no-deps",
                           "--require-hashes", "--only-binary", ":all:", "--index-url", repo + "/simple/",
                           "--trusted-host", host, "-r", str(PYFIRECREST_REQUIREMENTS)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return str(venv / "bin" / "python")


def _tokens(lab, where: Path) -> Path:
    """alice's token from the lab's token service, and three it must refuse (files named after them)."""
    where.mkdir(mode=0o700, exist_ok=True)
    token = lab.user_token("alice")
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    now = int(time.time())
    # the realm's own key, but out of date
    expired = Tokens(lab.home).issuers["keycloak"].sign({**claims, "iat": now - 7200, "exp": now - 3600})
    # the realm's key id and alice's claims, signed by a key that is not the realm's
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign = jwt.encode({**claims, "iat": now, "exp": now + 600}, other_key, algorithm="RS256",
                         headers={"kid": kid, "typ": "JWT"})
    # another issuer of the site (the OpenCHAMI face's token service), valid there
    other_issuer = lab.env()[lab.token_variable]
    for name, value in {"alice": token, "expired": expired, "foreign": foreign, "other-issuer": other_issuer}.items():
        (where / name).write_text(value)
    return where


@pytest.fixture(scope="module")
def firecrest_run(stack, login_node, pyfirecrest, tmp_path_factory) -> dict:
    """The user's session with pyfirecrest (CLIENT): what it saw."""
    work = tmp_path_factory.mktemp("firecrest-client")
    (work / "client.py").write_text(CLIENT)
    tokens = _tokens(stack.lab, work / "tokens")
    url = f"https://{stack.ips['service'][0]}:8443"
    env = dict(os.environ)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        env.pop(proxy, None)
    proc = subprocess.run([pyfirecrest, str(work / "client.py"), url, stack.lab.env()["VCLUSTER_CA_PATH"], SYSTEM,
                           str(tokens), login_node], capture_output=True, text=True, timeout=900, env=env, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    seen = json.loads(lines[-1]) if lines else {"ok": False, "error": proc.stdout[-2000:] + proc.stderr[-3000:]}
    if not seen.get("ok"):
        journal = stack.ssh("service", "journalctl -u firecrest.service -n 60 --no-pager", timeout=60)
        seen["journal"] = journal.stdout[-4000:]
        seen["stderr"] = proc.stderr[-3000:]
    return seen


def test_firecrest_user_runs_a_job_and_reads_its_output(firecrest_run):
    seen = firecrest_run
    assert seen["ok"], json.dumps(seen, indent=1)
    assert SYSTEM in seen["systems"], seen
    assert any(h.startswith("scheduler") for h in seen["health"]) and any(h.startswith("ssh") for h in seen["health"])
    assert seen["states"][-1] == "COMPLETED", seen
    assert seen["output"][:3] == [f"hello from FirecREST on {SYSTEM}", "alice", LOGIN], seen


def test_firecrest_refuses_expired_foreign_and_other_issuer_tokens(firecrest_run):
    seen = firecrest_run
    assert seen["ok"], json.dumps(seen, indent=1)
    for name in ("expired", "foreign", "other-issuer"):
        assert seen[f"refused_{name}"] == [401], (name, seen[f"refused_{name}"])


def test_sacct_shows_the_users_job(stack, firecrest_run):
    assert firecrest_run["ok"], json.dumps(firecrest_run, indent=1)
    jobid = firecrest_run["jobid"]
    # -D: every record of that id (one CI run once saw "2|root|COMPLETED" for -j 2, a record that was
    # not FirecREST's job); the job is told by its name, and the failure message lists every job seen
    fields = "JobID,User,State,NodeList,JobName"
    deadline = time.monotonic() + 90
    while True:
        proc = stack.user_ssh("alice", "service", f"sacct -D -X -n -P -o {fields} -j {jobid}")
        rows = [line.split("|") for line in proc.stdout.splitlines() if line.strip()]
        ours = [row[:4] for row in rows if row[4:] == ["fc-users"]]
        if ours and ours[0][2] == "COMPLETED" or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert proc.returncode == 0, proc.stderr
    if ours != [[jobid, "alice", "COMPLETED", LOGIN]] or len(rows) != 1:
        every = stack.ssh("service", f"sacct -a -D -X -n -P -o {fields},Submit -S now-3hours; "
                          "scontrol show config | grep -iE 'StateSave|FirstJobId|MaxJobId'; ls -la /var/spool/slurmctld")
        pytest.fail(f"sacct -D -j {jobid} as alice: {proc.stdout!r}; every job of the session:\n{every.stdout}{every.stderr}")
    # all of alice's jobs of the session (the FirecREST one, and srun's of test_iam when it ran) are hers
    mine = stack.user_ssh("alice", "service", "sacct -X -n -P -o JobID,User -S now-3hours")
    assert mine.returncode == 0 and jobid in mine.stdout, mine.stdout + mine.stderr
    assert {line.split("|")[1] for line in mine.stdout.splitlines() if line.strip()} == {"alice"}, mine.stdout


def test_slurmrestd_answers_alices_token_and_refuses_others(stack, firecrest_run):
    token = stack.user_ssh("alice", "service", "scontrol token lifespan=600")
    assert token.returncode == 0 and token.stdout.startswith("SLURM_JWT="), token.stdout + token.stderr
    jwt_value = token.stdout.strip().split("=", 1)[1]
    base = f"http://{stack.ips['service'][0]}:{RESTD_PORT}"
    session = requests.Session()
    session.trust_env = False
    alice = {"X-SLURM-USER-NAME": "alice", "X-SLURM-USER-TOKEN": jwt_value}

    ping = session.get(base + "/slurm/v0.0.38/ping", headers=alice, timeout=30)
    assert ping.status_code == 200, ping.text
    jobs = session.get(base + "/slurm/v0.0.38/jobs", headers=alice, timeout=30)
    assert jobs.status_code == 200 and isinstance(jobs.json().get("jobs"), list), jobs.text[:2000]

    # no token: slurmrestd itself refuses; a forged one (alice's with its signature changed): no data
    bare = session.get(base + "/slurm/v0.0.38/jobs", headers={"X-SLURM-USER-NAME": "alice"}, timeout=30)
    assert bare.status_code == 401, (bare.status_code, bare.text[:500])
    head, payload, signature = jwt_value.split(".")
    forged_sig = ("A" if signature[0] != "A" else "B") + signature[1:]
    forged = session.get(base + "/slurm/v0.0.38/jobs", timeout=30,
                         headers={"X-SLURM-USER-NAME": "alice", "X-SLURM-USER-TOKEN": f"{head}.{payload}.{forged_sig}"})
    assert forged.status_code != 200 and not (forged.json() if forged.text.startswith("{") else {}).get("jobs"), \
        (forged.status_code, forged.text[:500])


def test_firecrest_secrets_are_in_no_deploy_output(stack):
    assert "ESTABLISH" in stack.output and "<" in stack.output, "the stack's deploy log is not at -vvvv"
    for name in ("VCLUSTER_SECRET_STACK_FIRECREST_CLIENT", "VCLUSTER_SECRET_STACK_FIRECREST_SSH_KEY"):
        secret = os.environ[name].strip()
        assert len(secret) >= 16
        assert secret not in stack.output, name
        # the key's base64 lines neither
        assert not any(len(line) > 20 and line in stack.output for line in secret.splitlines()[1:-1]), name
    found = stack.ssh("service", "stat -c '%a %U %n' /etc/firecrest/secrets/ssh_key /etc/firecrest/secrets/client_secret")
    assert found.stdout.split("\n")[:2] == ["600 firecrest /etc/firecrest/secrets/ssh_key",
                                            "600 firecrest /etc/firecrest/secrets/client_secret"], found.stdout


def test_slurm_secrets_are_in_no_deploy_output(stack):
    """The secrets the slurm vService makes on the nodes (none in the manifest): not in the -vvvv deploy log."""
    assert "ESTABLISH" in stack.output, "the stack's deploy log is not at -vvvv"
    found = stack.ssh("service", "sed -n 's/^StoragePass=//p' /etc/slurm/slurmdbd.conf; "
                      "base64 -w0 /etc/slurm/jwt_hs256.key; echo; base64 -w0 /etc/munge/munge.key; echo")
    values = found.stdout.splitlines()
    assert found.returncode == 0 and len(values) == 3 and all(len(v) >= 16 for v in values), found.stdout + found.stderr
    for what, value in zip(("slurmdbd's database password", "the JWT key (base64)", "the munge key (base64)"), values):
        for form in (value, value.rstrip("="), urllib.parse.quote(value, safe="")):
            assert form not in stack.output, what
