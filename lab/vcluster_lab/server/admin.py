"""Lab administration under ``/lab/v1``: loopback only, no token.

* ``GET /status``: version, driver, uptime, counts, faults.
* ``GET /nodes[?all=1]``: lab nodes (``up``; with all=1 also seeded records) with SMD
  state, driver power state, image, VLANs.
* ``POST /nodes`` ``{"compute":N,"service":M,"power_on":bool,"image":"localhost/n:t","wait":bool}``:
  creates nodes as docs/architecture.md "The lab" names them (SMD component, an NMN
  EthernetInterface whose Description is the hostname, BSS boot parameters naming the
  image as ``<lab>/boot-images/<name>/<tag>/vmlinuz`` for new nodes or when ``image`` is
  given), powers them on through PCS when asked; idempotent.
* ``DELETE /nodes`` and ``DELETE /nodes/{xname}``: remove records, ``driver.remove_node``.
* ``POST /seed`` ``{"nodes":10000,"groups":40,"partitions":N}``, ``DELETE /seed``: records only.
* ``POST /nodes/{xname}/kill`` and ``/revive``; ``GET/PUT/DELETE /faults``.
* ``GET /requests[?reset=1]``: requests the services got since the start or the last reset,
  ``{"total": n, "routes": {"GET /hsm/v2/groups/<label>": n, ...}}`` (``/lab/`` not counted).
* ``GET /users``, ``PUT /users/{name}`` ``{"roles":[...],"password":..,"client_roles":[...]}``:
  Keycloak lab users for the password grant (the reply holds the password, once).
"""
from __future__ import annotations

import json
import time

from flask import Blueprint, request

from .. import __version__
from .. import inventory_data as inv
from ..faults import FaultError
from . import hsm
from . import xname as xn
from .common import ApiError, empty, json_body, lab, reply, text

bp = Blueprint("admin", __name__)
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


def bad(detail: str) -> ApiError:
    return ApiError(400, detail)


@bp.before_request
def _loopback_only():
    if request.remote_addr not in LOOPBACK:
        return text("the lab admin API answers on the loopback interface only", 403)
    return None


def _json() -> dict:
    data = json_body(lambda m: bad(f"invalid JSON: {m}"), allow_empty=True) or {}
    if not isinstance(data, dict):
        raise bad("body must be a JSON object")
    return data


# ---------------------------------------------------------------------------- status
@bp.get("/status")
def status():
    L = lab()
    with L.store.read() as c:
        counts = {
            "components": c.execute("SELECT count(*) FROM components").fetchone()[0],
            "nodes": c.execute("SELECT count(*) FROM components WHERE type='Node'").fetchone()[0],
            "groups": c.execute("SELECT count(*) FROM groups_").fetchone()[0],
            "partitions": c.execute("SELECT count(*) FROM partitions").fetchone()[0],
            "lab_nodes": c.execute("SELECT count(*) FROM lab_nodes WHERE origin='up'").fetchone()[0],
            "seeded_nodes": c.execute("SELECT count(*) FROM lab_nodes WHERE origin='seed'").fetchone()[0],
            "transitions_running": c.execute(
                "SELECT count(*) FROM transitions WHERE status NOT IN ('completed','aborted')").fetchone()[0],
        }
    return reply({"version": __version__, "driver": L.driver.name, "home": str(L.home),
                  "started": L.started_iso, "uptime_s": round(time.time() - L.started, 1),
                  "tls": L.tls, "counts": counts, "faults": L.faults.get(),
                  "faces": {"openchami": {"smd": "/hsm/v2", "bss": "/boot/v1", "pcs": "/power-control/v1",
                                          "cloud_init": "/cloud-init", "token": "/oauth2/token"},
                            "csm": {"smd": "/apis/smd/hsm/v2", "bss": "/apis/bss/boot/v1",
                                    "pcs": "/apis/power-control/v1", "bos": "/apis/bos/v2", "ims": "/apis/ims/v3",
                                    "token": "/keycloak/realms/shasta/protocol/openid-connect/token"},
                            "fabric": "/apis/fabric-manager", "ufm": "/ufmRest"}})


@bp.get("/requests")
def requests_get():
    counts = lab().requests.snapshot(reset=request.args.get("reset", "") in ("1", "true"))
    return reply({"total": sum(counts.values()), "routes": dict(sorted(counts.items()))})


# ---------------------------------------------------------------------------- nodes
def _node_rows(include_seed: bool) -> list[tuple]:
    with lab().store.read() as c:
        sql = ("SELECT n.xname, n.origin, n.kind, n.image, c.nid, c.role, c.state, c.flag FROM lab_nodes n "
               "LEFT JOIN components c ON c.id=n.xname")
        if not include_seed:
            sql += " WHERE n.origin='up'"
        rows = c.execute(sql + " ORDER BY n.origin, c.nid").fetchall()
        eth = {r[0]: (r[1], r[2], r[3]) for r in c.execute(
            "SELECT component_id, mac, description, ip_addresses FROM eth_interfaces")}
    return [(r, eth.get(r[0])) for r in rows]


@bp.get("/nodes")
def nodes_get():
    L = lab()
    rows = _node_rows(request.args.get("all", "") in ("1", "true"))
    power = L.driver.power_state([r[0] for r, _ in rows]) if rows else {}
    vlans = L.driver.vlan_membership() if hasattr(L.driver, "vlan_membership") else _fabric_vlans()
    out = []
    for r, e in rows:
        mac, host, ips = e if e else ("", "", "[]")
        ip_list = json.loads(ips)
        out.append({"xname": r[0], "origin": r[1], "kind": r[2], "nid": r[4], "role": r[5],
                    "hostname": host, "mac": mac, "ip": ip_list[0]["IPAddress"] if ip_list else "",
                    "state": r[6], "flag": r[7], "power": "on" if power.get(r[0]) == "on" else "off",
                    "boot_image": _boot_image(r[0]) if r[1] == "up" else "", "dead": L.faults.is_dead(r[0]),
                    "vlans": vlans.get(r[0], [])})
    return reply({"nodes": out})


def _fabric_vlans() -> dict[str, list[int]]:
    """VLANs of each node as the fabric manager's port policies say (when the driver cannot tell)."""
    from .fabric import vlans_of_policies
    out: dict[str, list[int]] = {}
    with lab().store.read() as c:
        nodes = [r[0] for r in c.execute("SELECT xname FROM lab_nodes WHERE origin='up'")]
    for x in nodes:
        state = lab().store.doc_get("fm.port", inv.edge_port(x) or "")
        if state and state.get("portPolicyLinks"):
            out[x] = sorted(vlans_of_policies(state["portPolicyLinks"]))
    return out


def _boot_image(xname: str) -> str:
    from .. import boot
    try:
        return boot.node_image(lab().store, xname)
    except boot.BootError:
        return ""


def boot_urls(base: str, image: str) -> tuple[str, str, str]:
    """(kernel, initrd, params) naming ``localhost/<name>:<tag>`` the way docs/architecture.md says."""
    ref = image.removeprefix("localhost/")
    if ":" not in ref or "/" in ref:
        raise bad(f"image must be localhost/<name>:<tag>, got {image!r}")
    name, tag = ref.split(":", 1)
    root = f"{base}/boot-images/{name}/{tag}"
    return (f"{root}/vmlinuz", f"{root}/initrd.img",
            f"console=ttyS0,115200 ip=dhcp root=live:{root}/rootfs.squashfs")


@bp.post("/nodes")
def nodes_post():
    data = _json()
    try:
        compute, service = int(data.get("compute", 0)), int(data.get("service", 0))
    except (TypeError, ValueError):
        raise bad("compute and service must be integers") from None
    if compute < 0 or service < 0 or compute > 10000 or service > 241:
        raise bad("compute must be 0..10000 and service 0..241")
    image = str(data.get("image") or inv.DEFAULT_IMAGE)
    kernel, initrd, params = boot_urls(request.host_url.rstrip("/"), image)
    layouts = inv.lab_nodes(compute, service)
    now, stamp = time.time(), hsm.now_rfc3339()
    created = []
    with lab().store.write() as c:
        existing = {r[0] for r in c.execute("SELECT xname FROM lab_nodes")}
        for n in layouts:
            comp = hsm.validate_component({"ID": n.xname, "State": "Off", "Flag": "OK", "Enabled": True,
                                           "Role": n.role, "SubRole": n.subrole, "NID": n.nid, "Arch": n.arch,
                                           "Class": n.cls, "NetType": n.net_type})
            hsm.upsert_components(c, [comp], force=False)
            eid = n.mac.replace(":", "")
            c.execute(f"INSERT OR IGNORE INTO eth_interfaces({hsm.ETH_COLS}) VALUES(?, ?, ?, ?, 'Node', ?, ?)",
                      (eid, n.hostname, n.mac, n.xname, stamp,
                       json.dumps([{"IPAddress": n.ip, "Network": "NMN"}])))
            if n.xname not in existing:
                created.append(n.xname)
                c.execute("INSERT INTO lab_nodes(xname, origin, kind, image, created) VALUES(?, 'up', ?, ?, ?)",
                          (n.xname, n.kind, image, now))
            elif "image" in data:
                c.execute("UPDATE lab_nodes SET image=? WHERE xname=?", (image, n.xname))
        targets = [n.xname for n in layouts if n.xname in created or "image" in data]
        if targets:
            row = c.execute("SELECT id FROM boot_configs WHERE kernel=? AND initrd=? AND params=? AND cloud_init IS NULL",
                            (kernel, initrd, params)).fetchone()
            cid = row[0] if row else c.execute("INSERT INTO boot_configs(kernel, initrd, params) VALUES(?, ?, ?)",
                                               (kernel, initrd, params)).lastrowid
            c.executemany("INSERT INTO boot_keys(kind, value, config_id) VALUES('host', ?, ?) "
                          "ON CONFLICT(kind, value) DO UPDATE SET config_id=excluded.config_id",
                          [(x, cid) for x in targets])
            c.execute("DELETE FROM boot_configs WHERE id NOT IN (SELECT DISTINCT config_id FROM boot_keys)")
    out = {"nodes": [n.xname for n in layouts], "created": created, "powered": targets, "transitionID": None}
    # Only new nodes (or all, when an image is imposed) are powered on: nodes that exist keep
    # their state, so `up` after a vCluster gave nodes back does not boot the free pool.
    if data.get("power_on") and targets:
        tid = lab().power.submit("on", targets, 10)
        out["transitionID"] = tid
        if data.get("wait"):
            lab().power.wait(tid, timeout=float(data.get("timeout", 900)))
            out["transition"] = lab().power.transition_json(tid)
    return reply(out)


def remove_nodes(xnames: list[str]) -> list[str]:
    """Delete every record of these nodes; driver.remove_node for nodes the driver made."""
    L = lab()
    if not xnames:
        return []
    with L.store.write() as c:
        origins = {}
        for i in range(0, len(xnames), 500):
            chunk = xnames[i:i + 500]
            ph = ",".join("?" * len(chunk))
            origins.update(dict(c.execute(f"SELECT xname, origin FROM lab_nodes WHERE xname IN ({ph})", chunk)))
            macs = [r[0] for r in c.execute(f"SELECT mac FROM eth_interfaces WHERE component_id IN ({ph})", chunk)]
            nids = [str(r[0]) for r in c.execute(f"SELECT nid FROM components WHERE id IN ({ph}) AND nid IS NOT NULL",
                                                 chunk)]
            c.execute(f"DELETE FROM components WHERE id IN ({ph})", chunk)
            c.execute(f"DELETE FROM eth_interfaces WHERE component_id IN ({ph})", chunk)
            c.execute(f"DELETE FROM lab_nodes WHERE xname IN ({ph})", chunk)
            c.executemany("DELETE FROM boot_keys WHERE kind=? AND value=?",
                          [("host", x) for x in chunk] + [("mac", m) for m in macs] + [("nid", n) for n in nids])
            c.executemany("DELETE FROM docs WHERE kind IN ('bos.component', 'fm.port') AND id=?",
                          [(x,) for x in chunk] + [(inv.edge_port(x) or "",) for x in chunk])
        c.execute("DELETE FROM boot_configs WHERE id NOT IN (SELECT DISTINCT config_id FROM boot_keys)")
    made = [x for x in xnames if origins.get(x) == "up"]
    if made:
        def work():
            for x in made:
                L.driver.remove_node(x)
        L.admin_pool.submit(work).result(timeout=900)
    if hasattr(L.driver, "forget"):
        L.driver.forget([x for x in xnames if origins.get(x) == "seed"])
    if any(L.faults.is_dead(x) for x in xnames):
        L.faults.update({"dead_nodes": [d for d in L.faults.get()["dead_nodes"] if d not in set(xnames)]})
    return xnames


@bp.delete("/nodes")
def nodes_delete():
    with lab().store.read() as c:
        xnames = [r[0] for r in c.execute("SELECT xname FROM lab_nodes ORDER BY xname")]
    return reply({"removed": remove_nodes(xnames)})


@bp.delete("/nodes/<xname>")
def node_delete(xname: str):
    x = xn.normalize(xname)
    with lab().store.read() as c:
        if not c.execute("SELECT 1 FROM lab_nodes WHERE xname=?", (x,)).fetchone():
            raise ApiError(404, f"{x} is not a lab node")
    return reply({"removed": remove_nodes([x])})


# ---------------------------------------------------------------------------- seed
@bp.post("/seed")
def seed_post():
    data = _json()
    try:
        n, g, p = int(data.get("nodes", 10000)), int(data.get("groups", 40)), int(data.get("partitions", 0))
    except (TypeError, ValueError):
        raise bad("nodes, groups and partitions must be integers") from None
    if not (0 <= n <= 100000 and 0 <= g <= 1000 and 0 <= p <= 100):
        raise bad("nodes 0..100000, groups 0..1000, partitions 0..100")
    t0 = time.time()
    L = lab()
    site = inv.seed_site(n, g, p, hsm.now_rfc3339())
    _drop_seed()
    with L.store.write() as c:
        c.executemany(f"INSERT OR REPLACE INTO components({', '.join(hsm.COLUMNS)}) "
                      f"VALUES({', '.join('?' * len(hsm.COLUMNS))})", site.components)
        c.executemany(f"INSERT OR REPLACE INTO eth_interfaces({hsm.ETH_COLS}) VALUES(?, ?, ?, ?, ?, ?, ?)",
                      site.interfaces)
        c.executemany("INSERT OR REPLACE INTO lab_nodes(xname, origin, kind, image, created) VALUES(?, 'seed', ?, '', ?)",
                      [(row[0], "compute" if row[6] == "Compute" else "service", t0) for row in site.components])
        for grp in site.groups:
            c.execute("INSERT INTO groups_(label, description, tags, exclusive_group) VALUES(?, ?, ?, ?)",
                      (grp["label"], grp["description"], json.dumps(grp["tags"]), grp["exclusive_group"]))
            c.executemany("INSERT INTO group_members(label, xname, exclusive_group) VALUES(?, ?, ?)",
                          [(grp["label"], x, grp["exclusive_group"]) for x in grp["members"]])
        for part in site.partitions:
            c.execute("INSERT INTO partitions(name, description, tags) VALUES(?, ?, ?)",
                      (part["name"], part["description"], json.dumps(part["tags"])))
            c.executemany("INSERT INTO partition_members(name, xname) VALUES(?, ?)",
                          [(part["name"], x) for x in part["members"]])
        c.execute("INSERT OR REPLACE INTO kv(key, value) VALUES('seed', ?)", (json.dumps(
            {"nodes": n, "groups": [x["label"] for x in site.groups],
             "partitions": [x["name"] for x in site.partitions]}),))
    if hasattr(L.driver, "adopt"):
        L.driver.adopt({row[0]: ("on" if row[2] in ("On", "Ready") else "off") for row in site.components})
    return reply({"nodes": n, "groups": len(site.groups), "partitions": len(site.partitions),
                  "seconds": round(time.time() - t0, 3)})


def _drop_seed() -> None:
    L = lab()
    prev = L.store.kv_get("seed", None)
    with L.store.read() as c:
        xnames = [r[0] for r in c.execute("SELECT xname FROM lab_nodes WHERE origin='seed'")]
    with L.store.write() as c:
        if prev:
            c.executemany("DELETE FROM groups_ WHERE label=?", [(x,) for x in prev["groups"]])
            c.executemany("DELETE FROM partitions WHERE name=?", [(x,) for x in prev["partitions"]])
        c.execute("DELETE FROM kv WHERE key='seed'")
        c.execute("DELETE FROM components WHERE id IN (SELECT xname FROM lab_nodes WHERE origin='seed')")
        c.execute("DELETE FROM eth_interfaces WHERE component_id IN (SELECT xname FROM lab_nodes WHERE origin='seed')")
        c.execute("DELETE FROM lab_nodes WHERE origin='seed'")
    if hasattr(L.driver, "forget") and xnames:
        L.driver.forget(xnames)


@bp.delete("/seed")
def seed_delete():
    _drop_seed()
    return empty(204)


# ---------------------------------------------------------------------------- faults
def kill_nodes(xnames: list[str]) -> None:
    L = lab()

    def work():
        for x in xnames:
            L.driver.kill(x)
    L.admin_pool.submit(work).result(timeout=300)
    with L.store.write() as c:
        hsm.set_state(c, xnames, "Standby", "Alert")


def revive_nodes(xnames: list[str]) -> None:
    with lab().store.write() as c:
        hsm.set_state(c, xnames, "Off", "OK")


def _existing_nodes(xnames: list[str]) -> None:
    with lab().store.read() as c:
        for x in xnames:
            comp = hsm.get_component(c, x)
            if comp is None or comp["Type"] != "Node":
                raise ApiError(404, f"{x} is not a node in SMD")


@bp.get("/faults")
def faults_get():
    return reply(lab().faults.get())


@bp.put("/faults")
def faults_put():
    data = _json()
    L = lab()
    before = set(L.faults.get()["dead_nodes"])
    try:
        if "dead_nodes" in data:
            _existing_nodes([xn.normalize(x) for x in data["dead_nodes"] or []])
        new = L.faults.update(data)
    except FaultError as exc:
        raise bad(str(exc)) from None
    after = set(new["dead_nodes"])
    if after - before:
        kill_nodes(sorted(after - before))
    if before - after:
        revive_nodes(sorted(before - after))
    return reply(new)


@bp.delete("/faults")
def faults_delete():
    L = lab()
    dead = L.faults.get()["dead_nodes"]
    new = L.faults.reset()
    revive_nodes(dead)
    return reply(new)


@bp.post("/nodes/<xname>/kill")
def node_kill(xname: str):
    x = xn.normalize(xname)
    _existing_nodes([x])
    L = lab()
    dead = set(L.faults.get()["dead_nodes"]) | {x}
    L.faults.update({"dead_nodes": sorted(dead)})
    kill_nodes([x])
    return reply({"xname": x, "dead": True})


@bp.post("/nodes/<xname>/revive")
def node_revive(xname: str):
    x = xn.normalize(xname)
    _existing_nodes([x])
    L = lab()
    L.faults.update({"dead_nodes": [d for d in L.faults.get()["dead_nodes"] if d != x]})
    revive_nodes([x])
    return reply({"xname": x, "dead": False})


# ---------------------------------------------------------------------------- users
@bp.get("/users")
def users_get():
    users = lab().creds.data.get("users", {})
    return reply({"users": [{"username": u, "roles": v.get("roles", []),
                             "client_roles": v.get("client_roles", ["admin"])} for u, v in sorted(users.items())]})


@bp.put("/users/<name>")
def user_put(name: str):
    data = _json()
    roles = data.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise bad("roles must be a list of strings")
    client_roles = data.get("client_roles")
    if client_roles is not None and not isinstance(client_roles, list):
        raise bad("client_roles must be a list of strings")
    user = lab().creds.set_user(name, roles, data.get("password"), client_roles)
    return reply({"username": name, "roles": user["roles"], "password": user["password"],
                  "client_roles": user.get("client_roles", ["admin"])})
