"""BOS v2 sessions that really run: limit, boot sets, BSS, power, component status.

A session worker resolves each boot set's nodes (``node_list`` + ``node_groups`` members
+ nodes of ``node_roles_groups``, filtered by arch and, unless ``include_disabled``, by
HSM ``Enabled``), applies the session ``limit`` the way BOS does (start from an empty set;
plain entries OR, ``&`` AND, ``!`` NOT; ``*`` = everything), writes BSS boot parameters
from the IMS manifest the boot set's ``path`` names, then powers nodes through the PCS
engine: boot = on (reboot nodes that run other artifacts), reboot = off then on,
shutdown = off. Session status goes pending -> running -> complete.
"""
from __future__ import annotations

import datetime
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from . import hsm
from . import xname as xn

log = logging.getLogger("vcluster_lab.bos")
MANIFEST = re.compile(r"^s3://boot-images/([0-9a-f-]{36})/manifest\.json$")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SessionError(Exception):
    """The session cannot run; recorded as the session's status.error."""


def default_component(xname: str) -> dict:
    """A BOS component as discovery creates it for an HSM node BOS has not acted on yet."""
    stamp = now_rfc3339()
    return {"id": xname,
            "actual_state": {"boot_artifacts": {}, "bss_token": "", "last_updated": stamp},
            "desired_state": {"boot_artifacts": {}, "configuration": "", "bss_token": "", "last_updated": stamp},
            "staged_state": {"boot_artifacts": {}, "configuration": "", "session": "", "last_updated": stamp},
            "last_action": {"action": "newly_discovered", "failed": False, "last_updated": stamp},
            "event_stats": {"power_on_attempts": 0, "power_off_graceful_attempts": 0,
                            "power_off_forceful_attempts": 0},
            "enabled": False, "error": "", "session": "", "retry_policy": 3,
            "status": {"phase": "", "status": "stable", "status_override": ""}}


ROOTFS_PREFIX = {"cpss3": "craycps-s3", "sbps": "sbps-s3"}


def boot_artifacts(store, path: str, kernel_parameters: str, provider: str, passthrough: str,
                   etag: str, session: str = "") -> dict:
    """kernel/initrd/kernel_parameters for a boot set, from the IMS image its manifest path names.

    Parameters are assembled as BOS writes them to BSS: the boot set's kernel_parameters,
    ``root=<provider>-s3:<rootfs>:<etag>[:<passthrough>]`` (``root=live:<rootfs>`` without a
    rootfs provider), ``nmd_data=url=<rootfs>,etag=<etag>`` and ``bos_session_id=<session>``.
    """
    m = MANIFEST.match(path or "")
    if not m:
        raise SessionError(f"boot set path {path!r} is not an s3://boot-images/<ims-image-id>/manifest.json")
    image_id = m.group(1)
    if store.doc_get("ims.image", image_id) is None:
        raise SessionError(f"IMS image {image_id} does not exist (boot set path {path})")
    base = f"s3://boot-images/{image_id}"
    rootfs = f"{base}/rootfs"
    if provider:
        root = f"root={ROOTFS_PREFIX.get(provider, provider)}:{rootfs}:{etag}" + (f":{passthrough}" if passthrough else "")
    else:
        root = f"root=live:{rootfs}"
    parts = [kernel_parameters.strip(), root, f"nmd_data=url={rootfs},etag={etag}"]
    if session:
        parts.append(f"bos_session_id={session}")
    return {"kernel": f"{base}/kernel", "kernel_parameters": " ".join(p for p in parts if p),
            "initrd": f"{base}/initrd"}


def same_artifacts(a: dict, b: dict) -> bool:
    """Whether two boot artifact sets boot the same thing (the session id does not count)."""
    def strip(d: dict) -> dict:
        params = " ".join(w for w in (d.get("kernel_parameters") or "").split() if not w.startswith("bos_session_id="))
        return {"kernel": d.get("kernel"), "initrd": d.get("initrd"), "kernel_parameters": params}
    return bool(a) and bool(b) and strip(a) == strip(b)


class SessionRunner:
    def __init__(self, lab):
        self.lab = lab
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="bos-session")
        self._lock = threading.Lock()

    def start(self, key: str) -> None:
        self.pool.submit(self._run_safely, key)

    def resume(self) -> None:
        for s in self.lab.store.doc_list("bos.session"):
            if s["status"]["status"] != "complete":
                log.info("resuming BOS session %s", s["name"])
                self.start(self._key(s))

    @staticmethod
    def _key(session: dict) -> str:
        return f"{session.get('tenant') or ''}/{session['name']}"

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ state helpers
    def _update(self, key: str, **changes) -> dict:
        with self._lock:
            s = self.lab.store.doc_get("bos.session", key)
            for k, v in changes.items():
                if k == "status":
                    s["status"].update(v)
                else:
                    s[k] = v
            self.lab.store.doc_put("bos.session", key, s)
            return s

    def component(self, xname: str) -> dict:
        return self.lab.store.doc_get("bos.component", xname) or default_component(xname)

    def _set_components(self, xnames: list[str], fn) -> None:
        with self.lab.store.write():
            for x in xnames:
                c = self.component(x)
                fn(c)
                self.lab.store.doc_put("bos.component", x, c)

    # ------------------------------------------------------------------ resolution
    def resolve_nodes(self, boot_set: dict, include_disabled: bool) -> set[str]:
        arch = boot_set.get("arch") or "X86"
        with self.lab.store.read() as c:
            rows = {r[0]: r for r in c.execute(f"{hsm.SELECT} WHERE type='Node'")}
            nodes = {xn.normalize(x) for x in boot_set.get("node_list") or []}
            groups = [g.lower() for g in boot_set.get("node_groups") or []]
            if groups:
                ph = ",".join("?" * len(groups))
                nodes |= {r[0] for r in c.execute(f"SELECT xname FROM group_members WHERE label IN ({ph})", groups)}
        roles = {r.lower() for r in boot_set.get("node_roles_groups") or []}
        if roles:
            nodes |= {x for x, r in rows.items() if (r[6] or "").lower() in roles}
        out = set()
        for x in nodes:
            r = rows.get(x)
            if r is None:
                continue
            node_arch = r[11] if r[11] not in ("", "UNKNOWN") else "X86"
            if node_arch != arch:
                continue
            if not include_disabled and r[4] is not None and not r[4]:
                continue
            out.add(x)
        return out

    def apply_limit(self, nodes: set[str], limit: str | None) -> set[str]:
        if limit in (None, "", "*"):
            return set(nodes)
        with self.lab.store.read() as c:
            rows = {r[0]: r for r in c.execute(f"{hsm.SELECT} WHERE type='Node'")}
            labels = {r[0] for r in c.execute("SELECT label FROM groups_")}
        chosen: set[str] = set()
        for entry in [e.strip() for e in limit.split(",") if e.strip()]:
            op = "or"
            if entry.startswith("&"):
                op, entry = "and", entry[1:]
            elif entry.startswith("!"):
                op, entry = "not", entry[1:]
            if entry in ("*", "all"):
                part = set(nodes)
            elif entry.lower() in labels:
                with self.lab.store.read() as c:
                    part = {r[0] for r in c.execute("SELECT xname FROM group_members WHERE label=?", (entry.lower(),))}
            elif hsm.canon(hsm.ROLES, entry):
                role = hsm.canon(hsm.ROLES, entry)
                part = {x for x, r in rows.items() if r[6] == role}
            else:
                part = {xn.normalize(entry)}
            chosen = chosen | part if op == "or" else chosen & part if op == "and" else chosen - part
        return nodes & chosen

    # ------------------------------------------------------------------ run
    def _run_safely(self, key: str) -> None:
        try:
            self._run(key)
        except SessionError as exc:
            self._update(key, status={"status": "complete", "end_time": now_iso(), "error": str(exc)})
        except Exception as exc:
            log.exception("BOS session %s crashed", key)
            self._update(key, status={"status": "complete", "end_time": now_iso(), "error": f"internal error: {exc}"})

    def _run(self, key: str) -> None:
        session = self.lab.store.doc_get("bos.session", key)
        if session is None or session["status"]["status"] == "complete":
            return
        template = self.lab.store.doc_get("bos.template", f"{session.get('tenant') or ''}/{session['template_name']}")
        if template is None:
            raise SessionError(f"Session template {session['template_name']} no longer exists")
        op = session["operation"]
        plan: dict[str, dict] = {}  # xname -> boot artifacts
        for bs_name, bs in template["boot_sets"].items():
            nodes = self.apply_limit(self.resolve_nodes(bs, session.get("include_disabled", False)),
                                     session.get("limit"))
            arts = None
            if op != "shutdown":
                arts = boot_artifacts(self.lab.store, bs["path"], bs.get("kernel_parameters", ""),
                                      bs.get("rootfs_provider", ""), bs.get("rootfs_provider_passthrough", ""),
                                      bs.get("etag", ""), session["name"])
            for x in nodes:
                plan[x] = arts or {}
        if not plan:
            raise SessionError("No nodes were found to act upon.")
        xnames = sorted(plan)
        self._update(key, components=",".join(xnames), status={"status": "running"})
        stamp = now_rfc3339()

        def claim(c: dict) -> None:
            c.update({"session": session["name"], "enabled": True, "error": ""})
            c["desired_state"].update({"boot_artifacts": plan[c["id"]], "last_updated": stamp,
                                       "configuration": (template.get("cfs") or {}).get("configuration", "")})
            c["last_action"] = {"action": "session_setup", "failed": False, "last_updated": stamp}
        self._set_components(xnames, claim)
        if op != "shutdown":
            self._write_bss(plan)
        power = self.lab.power
        states = self.lab.driver.power_state(xnames)
        on_nodes = [x for x in xnames if states.get(x) == "on"]
        if op == "shutdown":
            to_off, to_on = on_nodes, []
        elif op == "reboot":
            to_off, to_on = on_nodes, xnames
        else:  # boot: start what is off, reboot what runs other artifacts
            stale = [x for x in on_nodes
                     if not same_artifacts(self.component(x)["actual_state"].get("boot_artifacts") or {}, plan[x])]
            to_off, to_on = stale, [x for x in xnames if x not in on_nodes or x in stale]
        failed: dict[str, str] = {}
        if to_off:
            self._phase(to_off, "powering_off", "powering_off_gracefully", "power_off_graceful_attempts")
            failed.update(self._transition(power, "soft-off", to_off))
        if to_on:
            to_on = [x for x in to_on if x not in failed]
            self._phase(to_on, "powering_on", "powering_on", "power_on_attempts")
            failed.update(self._transition(power, "on", to_on))
        done = now_rfc3339()

        def settle(c: dict) -> None:
            x = c["id"]
            c["enabled"] = False
            c["status"]["phase"] = ""
            if x in failed:
                c["error"] = failed[x]
                c["status"]["status"] = "failed"
                c["last_action"]["failed"] = True
            else:
                c["error"] = ""
                c["status"]["status"] = "stable"
                c["actual_state"] = {"boot_artifacts": plan[x] if op != "shutdown" else {},
                                     "bss_token": c["actual_state"].get("bss_token", ""), "last_updated": done}
            c["last_action"]["last_updated"] = done
        self._set_components(xnames, settle)
        self._update(key, status={"status": "complete", "end_time": now_iso()})

    def _write_bss(self, plan: dict[str, dict]) -> None:
        by_config: dict[str, list[str]] = {}
        for x, arts in plan.items():
            by_config.setdefault(json.dumps(arts, sort_keys=True), []).append(x)
        with self.lab.store.write() as c:
            for cfg, hosts in by_config.items():
                arts = json.loads(cfg)
                row = c.execute("SELECT id FROM boot_configs WHERE kernel=? AND initrd=? AND params=? AND cloud_init IS NULL",
                                (arts["kernel"], arts["initrd"], arts["kernel_parameters"])).fetchone()
                cid = row[0] if row else c.execute(
                    "INSERT INTO boot_configs(kernel, initrd, params) VALUES(?, ?, ?)",
                    (arts["kernel"], arts["initrd"], arts["kernel_parameters"])).lastrowid
                c.executemany("INSERT INTO boot_keys(kind, value, config_id) VALUES('host', ?, ?) "
                              "ON CONFLICT(kind, value) DO UPDATE SET config_id=excluded.config_id",
                              [(h, cid) for h in hosts])
            c.execute("DELETE FROM boot_configs WHERE id NOT IN (SELECT DISTINCT config_id FROM boot_keys)")

    def _phase(self, xnames: list[str], phase: str, action: str, counter: str) -> None:
        stamp = now_rfc3339()

        def mark(c: dict) -> None:
            c["status"]["phase"] = phase
            c["last_action"] = {"action": action, "failed": False, "last_updated": stamp}
            c["event_stats"][counter] = c["event_stats"].get(counter, 0) + 1
        self._set_components(xnames, mark)

    @staticmethod
    def _transition(power, operation: str, xnames: list[str]) -> dict[str, str]:
        tid = power.submit(operation, xnames, 5)
        power.wait(tid, timeout=None)
        t = power.transition_json(tid) or {"tasks": []}
        return {task["xname"]: task.get("error") or task["taskStatusDescription"]
                for task in t["tasks"] if task["taskStatus"] != "succeeded"}
