"""BSS: ``/boot/v1/bootparameters`` and ``/boot/v1/bootscript``.

Mounted at ``/boot/v1`` (OpenCHAMI: ``bootparameters`` needs a token, ``bootscript`` and
``service/*`` are public) and ``/apis/bss/boot/v1`` (the CSM gateway path, which the
OpenCHAMI gateway also rewrites to BSS: a token from either face is accepted there).

Semantics reproduced (research-openchami §3, research-csm §7):
* GET answers ``null`` when nothing is stored, 404 when a filter matches nothing. The
  OpenCHAMI (Postgres) backend aggregates one entry per distinct boot config; the CSM
  (etcd) backend answers one entry per host/MAC/NID key.
* POST creates only: on OpenCHAMI existing keys are silently kept; on CSM an existing
  key fails the request (400). 201, empty body, ``BSS-Referral-Token`` header.
* PUT creates or replaces (kernel, initrd and params all replaced); 200 empty + token.
* PATCH changes the given non-empty fields of existing keys only; 404 if any is unknown.
* DELETE removes keys (or, with only kernel/initrd, the configs using them).
* Every entry carries a ``cloud-init`` block; the Postgres backend does not keep
  cloud-init data, so the OpenCHAMI face always shows null meta-data/user-data.
"""
from __future__ import annotations

import json
import re
import sqlite3
import uuid

from flask import Blueprint, request

from .. import boot
from . import hsm
from . import xname as xn
from .common import ApiError, check_gateway_auth, check_openchami_auth, empty, face, lab, query, reply, text

bp = Blueprint("bss", __name__)
MAC = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9a-fA-F]{2}$")
PHONE_HOME = {"pub_key_dsa": "", "pub_key_rsa": "", "pub_key_ecdsa": "", "instance_id": "", "hostname": "", "fqdn": ""}


def bad(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@bp.before_request
def _auth():
    rel = request.path.split("/boot/v1", 1)[-1].rstrip("/")
    if face() == "csm":
        return check_gateway_auth(also_openchami=True)
    if rel == "/bootparameters" or rel == "":
        return check_openchami_auth()
    return None


# ---------------------------------------------------------------------------- parsing
class Params:
    def __init__(self, data: dict):
        self.hosts = [str(h) for h in (data.get("hosts") or [])]
        self.macs = [str(m) for m in (data.get("macs") or [])]
        self.nids = data.get("nids") or []
        self.kernel = str(data.get("kernel") or "")
        self.initrd = str(data.get("initrd") or "")
        self.params = str(data.get("params") or "")
        self.cloud_init = data.get("cloud-init")
        for m in self.macs:
            if not MAC.match(m):
                raise bad(f"invalid MAC address: {m}")
        try:
            self.nids = [int(n) for n in self.nids]
        except (TypeError, ValueError):
            raise bad("nids must be integers") from None

    def keys(self) -> list[tuple[str, str]]:
        return ([("host", h) for h in self.hosts] + [("mac", m.lower()) for m in self.macs]
                + [("nid", str(n)) for n in self.nids])


def _decode() -> dict:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise bad(str(exc)) from None
    if not isinstance(data, dict):
        raise bad("body must be a BootParams object")
    return data


def _config_id(c: sqlite3.Connection, kernel: str, initrd: str, params: str, cloud_init: object,
               token: str) -> int:
    ci = json.dumps(cloud_init) if cloud_init is not None else None
    row = c.execute("SELECT id FROM boot_configs WHERE kernel=? AND initrd=? AND params=? AND "
                    "coalesce(cloud_init, '') = coalesce(?, '')", (kernel, initrd, params, ci)).fetchone()
    if row:
        c.execute("UPDATE boot_configs SET referral=? WHERE id=?", (token, row[0]))
        return row[0]
    return c.execute("INSERT INTO boot_configs(kernel, initrd, params, cloud_init, referral) VALUES(?, ?, ?, ?, ?)",
                     (kernel, initrd, params, ci, token)).lastrowid


def _drop_orphans(c: sqlite3.Connection) -> None:
    c.execute("DELETE FROM boot_configs WHERE id NOT IN (SELECT DISTINCT config_id FROM boot_keys)")


def _entry(kernel: str, initrd: str, params: str, cloud_init: str | None, hosts: list, macs: list,
           nids: list) -> dict:
    out: dict = {}
    if hosts:
        out["hosts"] = hosts
    if macs:
        out["macs"] = macs
    if nids:
        out["nids"] = nids
    if params:
        out["params"] = params
    if kernel:
        out["kernel"] = kernel
    if initrd:
        out["initrd"] = initrd
    ci = json.loads(cloud_init) if (cloud_init and face() == "csm") else {}
    out["cloud-init"] = {"meta-data": ci.get("meta-data"), "user-data": ci.get("user-data"),
                         "phone-home": dict(PHONE_HOME, **(ci.get("phone-home") or {}))}
    return out


def _entries(c: sqlite3.Connection, keys: list[tuple[str, str]] | None) -> list[dict]:
    sql = ("SELECT k.kind, k.value, c.id, c.kernel, c.initrd, c.params, c.cloud_init FROM boot_keys k "
           "JOIN boot_configs c ON c.id=k.config_id ORDER BY c.id, k.kind, k.value")
    rows = c.execute(sql).fetchall()
    if keys is not None:
        wanted = set(keys)
        rows = [r for r in rows if (r[0], r[1]) in wanted]
    out: list[dict] = []
    if face() == "csm":  # etcd backend: one entry per key
        for kind, value, _, kernel, initrd, params, ci in rows:
            out.append(_entry(kernel, initrd, params, ci, [value] if kind == "host" else [],
                              [value] if kind == "mac" else [], [int(value)] if kind == "nid" else []))
        return out
    grouped: dict[int, dict] = {}
    for kind, value, cid, kernel, initrd, params, ci in rows:
        g = grouped.setdefault(cid, {"cfg": (kernel, initrd, params, ci), "host": [], "mac": [], "nid": []})
        g[kind].append(int(value) if kind == "nid" else value)
    for g in grouped.values():
        kernel, initrd, params, ci = g["cfg"]
        out.append(_entry(kernel, initrd, params, ci, g["host"], g["mac"], g["nid"]))
    return out


# ---------------------------------------------------------------------------- routes
@bp.get("/bootparameters")
def params_get():
    q = query()
    keys: list[tuple[str, str]] = []
    for v in q.get("name", []):
        keys += [("host", h) for h in v.split(",") if h]
    for v in q.get("mac", []):
        keys += [("mac", m.lower()) for m in v.split(",") if m]
    for v in q.get("nid", []):
        for n in v.split(","):
            if not n:
                continue
            try:
                keys.append(("nid", str(int(n))))
            except ValueError:
                raise ApiError(400, f"Bad Request - Invalid nid '{n}'") from None
    body = _decode()
    if body:
        keys += Params(body).keys()
    with lab().store.read() as c:
        entries = _entries(c, keys or None)
    if keys and not entries:
        raise ApiError(404, "Cannot find boot parameters for requested Hosts, MACs or NIDs")
    return reply(entries if entries else None)


def _referral() -> str:
    return str(uuid.uuid4())


@bp.post("/bootparameters")
def params_post():
    p = Params(_decode())
    for h in p.hosts:
        x = xn.normalize(h)
        t = xn.xname_type(x)
        if t is None:
            raise bad(f"invalid xname: {h}")
        if t != "Node":
            raise bad(f"invalid xname type: {h}")
    p.hosts = [xn.normalize(h) for h in p.hosts]
    keys = p.keys()
    if not keys:
        raise bad("no hosts, macs or nids given")
    token = _referral()
    with lab().store.write() as c:
        existing = {(k, v) for k, v in keys
                    if c.execute("SELECT 1 FROM boot_keys WHERE kind=? AND value=?", (k, v)).fetchone()}
        if existing and face() == "csm":
            raise bad(f"{sorted(existing)[0][1]} already exists")
        new = [k for k in keys if k not in existing]
        if new:
            cid = _config_id(c, p.kernel, p.initrd, p.params, p.cloud_init, token)
            c.executemany("INSERT INTO boot_keys(kind, value, config_id) VALUES(?, ?, ?)",
                          [(k, v, cid) for k, v in new])
    return empty(201, headers={"BSS-Referral-Token": token})


@bp.put("/bootparameters")
def params_put():
    p = Params(_decode())
    if not (p.kernel or p.initrd or p.params):
        raise bad("need at least one of kernel, initrd or params")
    keys = p.keys()
    if not keys:
        raise bad("no hosts, macs or nids given")
    token = _referral()
    with lab().store.write() as c:
        cid = _config_id(c, p.kernel, p.initrd, p.params, p.cloud_init, token)
        c.executemany("INSERT INTO boot_keys(kind, value, config_id) VALUES(?, ?, ?) "
                      "ON CONFLICT(kind, value) DO UPDATE SET config_id=excluded.config_id",
                      [(k, v, cid) for k, v in keys])
        _drop_orphans(c)
    return empty(200, headers={"BSS-Referral-Token": token})


@bp.patch("/bootparameters")
def params_patch():
    p = Params(_decode())
    keys = p.keys()
    if not keys:
        raise bad("no hosts, macs or nids given")
    with lab().store.write() as c:
        current = {}
        for k, v in keys:
            row = c.execute("SELECT c.kernel, c.initrd, c.params, c.cloud_init, c.referral FROM boot_keys k "
                            "JOIN boot_configs c ON c.id=k.config_id WHERE k.kind=? AND k.value=?", (k, v)).fetchone()
            if row is None:
                raise ApiError(404, f"Not Found: no boot parameters for {v}")
            current[(k, v)] = row
        for key, (kernel, initrd, params, ci, ref) in current.items():
            cid = _config_id(c, p.kernel or kernel, p.initrd or initrd, p.params or params,
                             p.cloud_init if p.cloud_init is not None else (json.loads(ci) if ci else None), ref)
            c.execute("UPDATE boot_keys SET config_id=? WHERE kind=? AND value=?", (cid, *key))
        _drop_orphans(c)
    return empty(200)


@bp.delete("/bootparameters")
def params_delete():
    p = Params(_decode())
    keys = p.keys()
    with lab().store.write() as c:
        if keys:
            c.executemany("DELETE FROM boot_keys WHERE kind=? AND value=?", keys)
        elif p.kernel or p.initrd or p.params:
            clauses, args = [], []
            for col, val in (("kernel", p.kernel), ("initrd", p.initrd), ("params", p.params)):
                if val:
                    clauses.append(f"{col}=?")
                    args.append(val)
            ids = [r[0] for r in c.execute(f"SELECT id FROM boot_configs WHERE {' AND '.join(clauses)}", args)]
            c.executemany("DELETE FROM boot_keys WHERE config_id=?", [(i,) for i in ids])
        else:
            raise bad("nothing to delete: give hosts, macs, nids, kernel, initrd or params")
        _drop_orphans(c)
    return empty(200)


# ---------------------------------------------------------------------------- bootscript
def _identify(c: sqlite3.Connection, q: dict) -> tuple[str, str, int | None, str]:
    """(xname, mac, nid, role) of the node asking for its script; parts may be empty."""
    xname, mac, nid, role = "", "", None, ""
    if q.get("name"):
        xname = xn.normalize(q["name"][0])
    elif q.get("mac"):
        mac = q["mac"][0].lower()
        row = c.execute("SELECT component_id FROM eth_interfaces WHERE mac=?", (mac,)).fetchone()
        xname = row[0] if row else ""
    elif q.get("nid"):
        try:
            nid = int(q["nid"][0])
        except ValueError:
            raise ApiError(400, f"Bad Request - Invalid nid '{q['nid'][0]}'") from None
        row = c.execute("SELECT id FROM components WHERE nid=?", (nid,)).fetchone()
        xname = row[0] if row else ""
    if xname:
        comp = hsm.get_component(c, xname)
        if comp:
            nid = comp.get("NID", nid)
            role = comp.get("Role", "")
        if not mac:
            mac = hsm.node_network(c, xname)[0]
    return xname, mac, nid, role


@bp.get("/bootscript")
def bootscript():
    q = query()
    if not (q.get("mac") or q.get("name") or q.get("nid")):
        raise ApiError(400, "Need a mac=, name=, or nid= parameter")
    with lab().store.read() as c:
        xname, mac, nid, role = _identify(c, q)
        params = boot.lookup_params(c, xname, mac, nid, role) if (xname or mac or nid is not None) else None
        ref = ""
        if params is not None:
            row = c.execute("SELECT c.referral FROM boot_keys k JOIN boot_configs c ON c.id=k.config_id "
                            "WHERE k.kind='host' AND k.value=?", (xname,)).fetchone()
            ref = row[0] if row else ""
    base = request.host_url.rstrip("/")
    retry_key = "mac=" + mac if mac else ("name=" + xname if xname else f"nid={nid}")
    retry = f"chain {base}{request.script_root}{request.path}?{retry_key}&retry=1"
    if params is None:
        return text("#!ipxe\necho No boot parameters for this node; retrying in 30 seconds\nsleep 30\n"
                    f"{retry}\n", content_type="text/plain; charset=utf-8")
    if q.get("json") and q["json"][0] in ("1", "true"):
        return reply({"params": params["params"], "kernel": params["kernel"], "initrd": params["initrd"]})
    args = params["params"]
    extra = []
    if "xname=" not in args and xname:
        extra.append(f"xname={xname}")
    if "nid=" not in args and nid is not None:
        extra.append(f"nid={nid}")
    if ref:
        extra.append(f"bss_referral_token={ref}")
    if "BOOTIF=" not in args and mac:
        extra.append("BOOTIF=01-" + mac.replace(":", "-"))
    if "ds=" not in args:
        extra.append(f"ds=nocloud-net;s={base}/cloud-init/")
    line = " ".join(x for x in [f"kernel --name kernel {params['kernel']} initrd=initrd", args, *extra] if x)
    script = (f"#!ipxe\n{line} || goto boot_retry\n"
              f"initrd --name initrd {params['initrd']} || goto boot_retry\n"
              "boot || goto boot_retry\n:boot_retry\nsleep 30\n" + retry + "\n")
    return text(script, content_type="text/plain; charset=utf-8")


@bp.get("/service/status")
def service_status():
    return reply({"bss-status": "running"})


@bp.get("/service/version")
def service_version():
    return reply({"bss-version": "vcluster-lab"})


@bp.get("/hosts")
def hosts():
    """Node components as BSS reports them (SMD state of each host)."""
    with lab().store.read() as c:
        rows = c.execute(f"{hsm.SELECT} WHERE type='Node' ORDER BY id").fetchall()
    return reply([hsm.row_to_json(r) for r in rows])
