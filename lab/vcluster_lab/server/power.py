"""The power transition engine behind PCS (and BOS, and the admin API).

A transition is stored first (so ``GET /transitions/{id}`` sees it at once and a restart
does not lose it), then run by a worker thread: each task calls the NodeDriver from a
task pool (never from a request thread), under a per-node lock, and moves
new -> in-progress -> succeeded/failed with PCS's own descriptions. SMD follows the power
state: Off after an off, On then Ready once the driver reports the node on. Dead nodes
(fault) fail ``Failed to achieve transition`` until revived. A node without BSS boot
parameters fails to power on (it would sit in iPXE). Unfinished transitions are resumed
when the server starts again. A driver that switches many nodes at once (``apply_power``:
records) gets a whole transition in a few reads and writes, as a real PCS fans one out to
every BMC at once.
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, wait

from .. import boot
from ..nodes.base import DriverError, NodeSpec
from . import hsm

log = logging.getLogger("vcluster_lab.pcs")

OPERATIONS = {"on": "On", "off": "Off", "soft-off": "Soft-Off", "soft-restart": "Soft-Restart",
              "hard-restart": "Hard-Restart", "init": "Init", "force-off": "Force-Off"}
NODE_TRANSITIONS = ["On", "Off", "Soft-Restart", "Hard-Restart", "Init", "Force-Off", "Soft-Off"]
EXPIRY = 24 * 3600
FINISHED = ("completed", "aborted")
FAILED = "Failed to achieve transition"
# Tasks per step of a batched transition: progress shows between steps and an abort stops the rest.
BATCH = 250


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PowerEngine:
    def __init__(self, lab):
        self.lab = lab
        self.jobs = ThreadPoolExecutor(8, thread_name_prefix="pcs-transition")
        self.tasks = ThreadPoolExecutor(8, thread_name_prefix="pcs-task")
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._done: dict[str, threading.Event] = {}

    # ------------------------------------------------------------------ public
    def submit(self, operation: str, xnames: list[str], deadline_minutes: int = 5) -> str:
        """Record a transition and start it; returns its id."""
        op = OPERATIONS[operation.lower()]
        tid = str(uuid.uuid4())
        now = time.time()
        with self.lab.store.write() as c:
            c.execute("INSERT INTO transitions(id, operation, created, expires, status, deadline) "
                      "VALUES(?, ?, ?, ?, 'new', ?)", (tid, op, now, now + EXPIRY, int(deadline_minutes)))
            c.executemany("INSERT INTO transition_tasks(transition_id, seq, xname, status, description) "
                          "VALUES(?, ?, ?, 'new', 'Gathering data')", [(tid, i, x) for i, x in enumerate(xnames)])
        self._start(tid)
        return tid

    def _start(self, tid: str) -> None:
        self._done[tid] = threading.Event()
        self.jobs.submit(self._run_safely, tid)

    def resume(self) -> None:
        """Restart transitions a previous server left unfinished."""
        with self.lab.store.read() as c:
            ids = [r[0] for r in c.execute("SELECT id FROM transitions WHERE status NOT IN ('completed', 'aborted')")]
        for tid in ids:
            log.info("resuming transition %s", tid)
            self._start(tid)

    def abort(self, tid: str) -> str | None:
        """Signal an abort; returns the previous status (None if unknown)."""
        with self.lab.store.write() as c:
            row = c.execute("SELECT status FROM transitions WHERE id=?", (tid,)).fetchone()
            if not row:
                return None
            if row[0] not in FINISHED:
                c.execute("UPDATE transitions SET abort=1, status='abort-signaled' WHERE id=?", (tid,))
            return row[0]

    def wait(self, tid: str, timeout: float | None = None) -> str:
        """Block until the transition finishes (or timeout); returns its status."""
        deadline = time.time() + (timeout or 0)
        ev = self._done.get(tid)
        if ev is not None:
            ev.wait(timeout)
        while True:
            status = self.status(tid)
            if status in FINISHED or status is None or (timeout is not None and time.time() >= deadline):
                return status or "missing"
            time.sleep(0.05)

    def status(self, tid: str) -> str | None:
        with self.lab.store.read() as c:
            row = c.execute("SELECT status FROM transitions WHERE id=?", (tid,)).fetchone()
        return row[0] if row else None

    def purge_expired(self) -> None:
        with self.lab.store.write() as c:
            c.execute("DELETE FROM transitions WHERE expires < ? AND status IN ('completed', 'aborted')",
                      (time.time(),))

    def shutdown(self) -> None:
        self.jobs.shutdown(wait=False, cancel_futures=True)
        self.tasks.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ running
    def _lock(self, xname: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[xname]

    def _set_task(self, tid: str, seq: int, status: str, description: str, error: str = "") -> None:
        with self.lab.store.write() as c:
            c.execute("UPDATE transition_tasks SET status=?, description=?, error=? WHERE transition_id=? AND seq=?",
                      (status, description, error, tid, seq))

    def _aborted(self, tid: str) -> bool:
        with self.lab.store.read() as c:
            row = c.execute("SELECT abort FROM transitions WHERE id=?", (tid,)).fetchone()
        return bool(row and row[0])

    def _run_safely(self, tid: str) -> None:
        try:
            self._run(tid)
        except Exception:  # a bug must not leave the transition in-progress forever
            log.exception("transition %s crashed", tid)
            with self.lab.store.write() as c:
                c.execute("UPDATE transition_tasks SET status='failed', description=?, error='internal error' "
                          "WHERE transition_id=? AND status IN ('new', 'in-progress')", (FAILED, tid))
                c.execute("UPDATE transitions SET status='completed' WHERE id=?", (tid,))
        finally:
            ev = self._done.pop(tid, None)
            if ev:
                ev.set()

    def _run(self, tid: str) -> None:
        with self.lab.store.write() as c:
            row = c.execute("SELECT operation, created, deadline, abort FROM transitions WHERE id=?", (tid,)).fetchone()
            if not row:
                return
            op, created, deadline_min, aborted = row
            if not aborted:
                c.execute("UPDATE transitions SET status='in-progress' WHERE id=?", (tid,))
            tasks = c.execute("SELECT seq, xname FROM transition_tasks WHERE transition_id=? AND status IN "
                              "('new', 'in-progress') ORDER BY seq", (tid,)).fetchall()
        deadline = created + deadline_min * 60 if deadline_min > 0 else None  # 0: no wait, -1: forever
        confirm = deadline_min != 0
        if hasattr(self.lab.driver, "apply_power"):
            for start in range(0, len(tasks), BATCH):
                self._run_batch(tid, op, tasks[start:start + BATCH], deadline, confirm)
        else:
            futures = [self.tasks.submit(self._task_safely, tid, seq, x, op, deadline, confirm) for seq, x in tasks]
            wait(futures)
        with self.lab.store.write() as c:
            aborted = c.execute("SELECT abort FROM transitions WHERE id=?", (tid,)).fetchone()[0]
            c.execute("UPDATE transitions SET status=? WHERE id=?", ("aborted" if aborted else "completed", tid))

    def _task_safely(self, tid, seq, xname, op, deadline, confirm) -> None:
        try:
            self._task(tid, seq, xname, op, deadline, confirm)
        except Exception as exc:
            log.exception("transition %s task %s crashed", tid, xname)
            self._set_task(tid, seq, "failed", FAILED, f"internal error: {exc}")

    @staticmethod
    def _decide(op: str, is_on: bool, dead: bool, image) -> tuple:
        """What one task does, as PCS decides it: ``("done", status, description, error, smd)`` when nothing
        is to be switched (``smd``: the state SMD then shows, or None), else ``("switch", "on"|"off"|"restart",
        image, hard)``. ``image()`` names what the node boots (BootError when its boot parameters name none)."""
        if op in ("Off", "Soft-Off", "Force-Off"):
            if not is_on:
                return ("done", "succeeded", "Component already in desired state", "", "Off")
            return ("switch", "off", "", op == "Force-Off")
        if dead:
            return ("done", "failed", FAILED, "node does not respond (lab dead-node fault); revive it first", None)
        if op == "Soft-Restart" and not is_on:
            return ("done", "failed", "Component must be in the On state for Soft-Restart",
                    "Component must be in the On state for Soft-Restart", None)
        if op == "On" and is_on:
            return ("done", "succeeded", "Component already in desired state", "", "Ready")
        try:
            booted = image()
        except boot.BootError as exc:
            return ("done", "failed", FAILED, str(exc), None)
        if op == "On" or not is_on:
            return ("switch", "on", booted, False)
        return ("switch", "restart", booted, op in ("Hard-Restart", "Init"))

    @staticmethod
    def _done_description(want: str, confirm: bool, op: str) -> str:
        if not confirm:  # taskDeadlineMinutes 0: applied, not confirmed
            return f"Transition applied, {op}"
        return "Transition confirmed, On" if want == "on" else f"Transition confirmed, {op}"

    def _task(self, tid: str, seq: int, xname: str, op: str, deadline: float | None, confirm: bool) -> None:
        if self._aborted(tid):
            self._set_task(tid, seq, "failed", "Aborted. Last status - new", "Transition aborted")
            return
        store, driver = self.lab.store, self.lab.driver
        with store.read() as c:
            comp = hsm.get_component(c, xname)
            mac, ip = hsm.node_network(c, xname) if comp else ("", "")
        if comp is None:
            self._set_task(tid, seq, "failed", FAILED, "Missing xname")
            return
        if comp["Type"] != "Node":
            self._set_task(tid, seq, "unsupported", f"Component type {comp['Type']} is not supported by the lab")
            return
        self._set_task(tid, seq, "in-progress", f"Applying transition, {op}")
        with self._lock(xname):
            if deadline is not None and time.time() > deadline:
                self._set_task(tid, seq, "failed", FAILED, "Timeout waiting for transition")
                return
            if self._aborted(tid):
                self._set_task(tid, seq, "failed", "Aborted. Last status - in-progress", "Transition aborted")
                return
            spec = NodeSpec(xname=xname, nid=int(comp.get("NID", 0) or 0),
                            hostname=self.lab.hostname_of(xname), mac=mac, ip=ip)
            is_on = driver.power_state([xname]).get(xname, "undefined") == "on"
            decision = self._decide(op, is_on, self.lab.faults.is_dead(xname),
                                    lambda: boot.node_image(store, xname, mac, spec.nid or None, comp.get("Role", "")))
            if decision[0] == "done":
                _, status, description, error, smd = decision
                with store.write():
                    if smd == "Off":
                        self._mark_off(xname)
                    elif smd == "Ready":
                        self._mark_ready(xname)
                    self._set_task(tid, seq, status, description, error)
                return
            _, action, image, hard = decision
            try:
                if action == "off":
                    driver.power_off(xname, force=hard)
                elif action == "on":
                    driver.power_on(spec, image)
                else:
                    driver.restart(spec, image, hard=hard)
                self._finish(tid, seq, xname, "off" if action == "off" else "on", confirm,
                             "On" if op == "On" else op)
            except DriverError as exc:
                self._set_task(tid, seq, "failed", FAILED, str(exc))

    def _run_batch(self, tid: str, op: str, tasks: list[tuple], deadline: float | None, confirm: bool) -> None:
        """A whole transition in a few reads and writes, for a driver that switches many nodes at once
        (records): as a real PCS fans a transition out to every BMC at once, its time hardly grows with
        the node count, so neither does the number of polls a client makes."""
        store, driver = self.lab.store, self.lab.driver
        if self._aborted(tid):
            results = [(seq, "failed", "Aborted. Last status - new", "Transition aborted") for seq, _ in tasks]
            self._write_batch(tid, results, {})
            return
        if deadline is not None and time.time() > deadline:
            self._write_batch(tid, [(seq, "failed", FAILED, "Timeout waiting for transition") for seq, _ in tasks], {})
            return
        xnames = [x for _, x in tasks]
        states = driver.power_state(xnames)
        results, switches, smd_states = [], {}, {}
        with store.read() as c:
            marks = ",".join("?" * len(xnames))
            comps = {r[0]: hsm.row_to_json(r) for r in c.execute(f"{hsm.SELECT} WHERE id IN ({marks})", xnames)}
            macs: dict[str, str] = {}
            for x, mac in c.execute(f"SELECT component_id, mac FROM eth_interfaces WHERE component_id IN ({marks}) "
                                    "ORDER BY id DESC", xnames):
                macs[x] = mac  # the first interface by id wins, as hsm.node_network picks it
            for seq, x in tasks:
                comp = comps.get(x)
                if comp is None:
                    results.append((seq, "failed", FAILED, "Missing xname"))
                    continue
                if comp["Type"] != "Node":
                    results.append((seq, "unsupported", f"Component type {comp['Type']} is not supported by the lab", ""))
                    continue
                mac = macs.get(x, "")

                def image(x=x, mac=mac, comp=comp):
                    params = boot.lookup_params(c, x, mac, comp.get("NID"), comp.get("Role", ""))
                    if params is None:
                        raise boot.BootError(f"no boot parameters for {x} in BSS: the node would wait in iPXE")
                    return boot.resolve_image(store, params)
                decision = self._decide(op, states.get(x) == "on", self.lab.faults.is_dead(x), image)
                if decision[0] == "done":
                    _, status, description, error, smd = decision
                    results.append((seq, status, description, error))
                    if smd:
                        smd_states[x] = smd
                    continue
                _, action, booted, _hard = decision
                switches[x] = ("off", "") if action == "off" else ("on", booted)
                want = "off" if action == "off" else "on"
                results.append((seq, "succeeded", self._done_description(want, confirm, "On" if op == "On" else op), ""))
                smd_states[x] = "Off" if want == "off" else ("Ready" if confirm else "On")
        driver.apply_power(switches)
        self._write_batch(tid, results, smd_states)

    def _write_batch(self, tid: str, results: list[tuple], smd_states: dict[str, str]) -> None:
        with self.lab.store.write() as c:
            # a dead node keeps its flag when it goes Off (as _mark_off does)
            dead = [x for x, state in smd_states.items() if state == "Off" and self.lab.faults.is_dead(x)]
            flags = dict(c.execute(f"SELECT id, flag FROM components WHERE id IN ({','.join('?' * len(dead))})",
                                   dead).fetchall()) if dead else {}
            c.executemany("UPDATE components SET state=?, flag=? WHERE id=?",
                          [(state, flags.get(x, "OK"), x) for x, state in smd_states.items()])
            c.executemany("UPDATE transition_tasks SET status=?, description=?, error=? WHERE transition_id=? AND seq=?",
                          [(status, description, error, tid, seq) for seq, status, description, error in results])

    def _finish(self, tid: str, seq: int, xname: str, want: str, confirm: bool, op: str) -> None:
        """Confirm the power state with the driver; SMD state and the task's end in one write."""
        if confirm:
            got = self.lab.driver.power_state([xname]).get(xname)
            if got != want:
                self._set_task(tid, seq, "failed", FAILED, f"node reports power {got}, expected {want}")
                return
        done = self._done_description(want, confirm, op)
        with self.lab.store.write():
            if want == "on":
                if confirm:
                    self._mark_ready(xname)  # the driver reports it on: Ready
                else:
                    with self.lab.store.write() as c:
                        hsm.set_state(c, [xname], "On")
            else:
                self._mark_off(xname)
            self._set_task(tid, seq, "succeeded", done)

    def _mark_ready(self, xname: str) -> None:
        with self.lab.store.write() as c:
            hsm.set_state(c, [xname], "Ready")

    def _mark_off(self, xname: str) -> None:
        with self.lab.store.write() as c:
            row = c.execute("SELECT flag FROM components WHERE id=?", (xname,)).fetchone()
            hsm.set_state(c, [xname], "Off", row[0] if row and self.lab.faults.is_dead(xname) else "OK")

    # ------------------------------------------------------------------ reading
    def transition_json(self, tid: str, with_tasks: bool = True) -> dict | None:
        with self.lab.store.read() as c:
            row = c.execute("SELECT id, operation, created, expires, status FROM transitions WHERE id=?",
                            (tid,)).fetchone()
            if not row:
                return None
            tasks = c.execute("SELECT xname, status, description, error FROM transition_tasks WHERE transition_id=? "
                              "ORDER BY seq", (tid,)).fetchall()
        return self._json(row, tasks, with_tasks)

    def all_json(self) -> list[dict]:
        self.purge_expired()
        with self.lab.store.read() as c:
            rows = c.execute("SELECT id, operation, created, expires, status FROM transitions ORDER BY created").fetchall()
            tasks: dict[str, list] = defaultdict(list)
            for t in c.execute("SELECT transition_id, xname, status, description, error FROM transition_tasks"):
                tasks[t[0]].append(t[1:])
        return [self._json(r, tasks[r[0]], False) for r in rows]

    @staticmethod
    def _json(row: tuple, tasks: list, with_tasks: bool) -> dict:
        counts = {"total": len(tasks), "new": 0, "in-progress": 0, "failed": 0, "succeeded": 0, "un-supported": 0}
        for t in tasks:
            counts["un-supported" if t[1] == "unsupported" else t[1]] += 1
        out = {"transitionID": row[0], "operation": row[1], "createTime": rfc3339(row[2]),
               "automaticExpirationTime": rfc3339(row[3]), "transitionStatus": row[4], "taskCounts": counts}
        if with_tasks:
            out["tasks"] = [dict({"xname": t[0], "taskStatus": t[1], "taskStatusDescription": t[2]},
                                 **({"error": t[3]} if t[3] else {})) for t in tasks]
        return out
