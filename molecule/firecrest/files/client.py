"""molecule/firecrest's user: FirecREST's v2 REST API, called from the controller with the standard
library (pyfirecrest, the client users install, is tests/integration/test_users.py's, on the stack).

Usage: client.py URL CA SYSTEM TOKENS_DIR
With alice's token: the system is listed and its health checks pass (GET /status/systems), a batch job
is submitted (POST /compute/SYSTEM/jobs), followed to COMPLETED (GET /compute/SYSTEM/jobs/ID) and its
output file read (GET /filesystem/SYSTEM/ops/view). The expired and the foreign-signed tokens are
refused (401). Prints one JSON line of what it saw; exits non-zero on the first failure.
"""
import json
import ssl
import sys
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

URL, CA, SYSTEM, TOKENS = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], Path(sys.argv[4])
MARK = "hello from FirecREST on %s" % SYSTEM
CONTEXT = ssl.create_default_context(cafile=CA)


def call(token, method, path, params=None, body=None):
    """(status, decoded JSON or text) of one request with TOKEN as its bearer token."""
    url = URL + path + ("?" + urlencode(params) if params else "")
    headers = {"Authorization": "Bearer " + (TOKENS / token).read_text().strip()}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        with urlopen(Request(url, data=data, headers=headers, method=method), context=CONTEXT, timeout=60) as resp:
            status, raw = resp.status, resp.read()
    except HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def fail(msg, **seen):
    print(json.dumps({"ok": False, "error": msg, **seen}, default=str))
    sys.exit(1)


def expect(status, reply, code, what, seen):
    if status != code:
        fail("%s: HTTP %s, not %s" % (what, status, code), reply=str(reply)[:1000], **seen)
    return reply


seen = {}
deadline = time.monotonic() + 150
while True:
    systems = expect(*call("alice", "GET", "/status/systems"), 200, "GET /status/systems", seen)["systems"]
    mine = [s for s in systems if s["name"] == SYSTEM]
    if not mine:
        fail("system %s not listed" % SYSTEM, systems=[s["name"] for s in systems])
    health = mine[0].get("servicesHealth") or []
    if health and all(h.get("healthy") for h in health):
        break
    if time.monotonic() > deadline:
        fail("the system's health checks do not pass", health=health)
    time.sleep(3)
seen["systems"] = [s["name"] for s in systems]
seen["health"] = sorted(h.get("serviceType", "?") for h in health)

script = "#!/bin/bash\n#SBATCH --job-name=fc-molecule\n#SBATCH --output=/home/alice/fc-job-%%j.out\necho '%s'\nhostname\n" % MARK
job = expect(*call("alice", "POST", "/compute/%s/jobs" % SYSTEM,
                   body={"job": {"working_directory": "/home/alice", "script": script}}), 201, "submit", seen)
jobid = str(job["jobId"])
seen["jobid"] = jobid
state = None
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    info = expect(*call("alice", "GET", "/compute/%s/jobs/%s" % (SYSTEM, jobid)), 200, "job info", seen)["jobs"] or []
    state = (info[0].get("status") or {}).get("state") if info else None
    if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
        break
    time.sleep(2)
seen["state"] = state
if state != "COMPLETED":
    fail("job %s ended %s" % (jobid, state), **seen)
output = expect(*call("alice", "GET", "/filesystem/%s/ops/view" % SYSTEM, params={"path": "/home/alice/fc-job-%s.out" % jobid}),
                200, "view", seen)["output"]
seen["output"] = output.strip().splitlines()[:2]
if MARK not in output:
    fail("the job's output file does not hold the mark", **seen)

for name in ("expired", "foreign"):
    status, reply = call(name, "GET", "/status/systems")
    if status != 401:
        fail("the %s token got HTTP %s, not 401" % (name, status), reply=str(reply)[:300], **seen)
    seen["refused_" + name] = 401
print(json.dumps({"ok": True, **seen}, default=str))
