"""molecule/firecrest's user: pyfirecrest (v2 client) against the FirecREST the role deployed.

Usage: client.py URL CA SYSTEM TOKENS_DIR
With alice's token: the system is listed and its health checks pass, a batch job is submitted,
followed to COMPLETED and its output file read. The expired and the foreign-signed tokens are
refused (401). Prints one JSON line of what it saw; exits non-zero on the first failure.
"""
import json
import sys
import time
from pathlib import Path

from firecrest import FirecrestException
from firecrest.v2 import Firecrest

URL, CA, SYSTEM, TOKENS = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
MARK = "hello from FirecREST on %s" % SYSTEM


class Token:
    def __init__(self, name):
        self.token = (TOKENS / name).read_text().strip()

    def get_access_token(self):
        return self.token


def fail(msg, **seen):
    print(json.dumps({"ok": False, "error": msg, **seen}, default=str))
    sys.exit(1)


alice = Firecrest(firecrest_url=URL, authorization=Token("alice"), verify=CA)
seen = {}
deadline = time.monotonic() + 150
while True:
    systems = alice.systems()
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
job = alice.submit(SYSTEM, working_dir="/home/alice", script_str=script)
jobid = str(job["jobId"])
seen["jobid"] = jobid
state = None
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    info = alice.job_info(SYSTEM, jobid)
    state = (info[0].get("status") or {}).get("state") if info else None
    if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
        break
    time.sleep(2)
seen["state"] = state
if state != "COMPLETED":
    fail("job %s ended %s" % (jobid, state), **seen)
output = alice.view(SYSTEM, "/home/alice/fc-job-%s.out" % jobid)
seen["output"] = output.strip().splitlines()[:2]
if MARK not in output:
    fail("the job's output file does not hold the mark", **seen)

for name in ("expired", "foreign"):
    try:
        Firecrest(firecrest_url=URL, authorization=Token(name), verify=CA).systems()
    except FirecrestException as exc:
        codes = [getattr(r, "status_code", None) for r in getattr(exc, "responses", [])]
        if 401 not in codes:
            fail("the %s token was refused, but not with 401: %s" % (name, codes), **seen)
        seen["refused_" + name] = 401
    else:
        fail("the %s token was accepted" % name, **seen)
print(json.dumps({"ok": True, **seen}, default=str))
