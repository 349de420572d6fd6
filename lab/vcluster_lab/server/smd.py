"""SMD (HSM v2): service, State/Components. Groups and inventory live in sibling modules.

Mounted at ``/hsm/v2`` (OpenCHAMI: SMD's own JWT check, collection GETs of Components
and EthernetInterfaces public) and ``/apis/smd/hsm/v2`` (CSM: everything behind the
gateway). Replies carry ``/hsm/v2/...`` URIs on both faces, as the service itself does.
"""
from __future__ import annotations

from flask import Blueprint, request

from . import hsm
from . import xname as xn
from .common import ApiError, check_face_auth, empty, json_body, lab, query, reply

bp = Blueprint("smd", __name__)
ROOT = "/hsm/v2"


def smd_error(status: int, detail: str) -> ApiError:
    return ApiError(status, detail)


def decode_error(msg: str) -> ApiError:
    """SMD answers undecodable JSON with 500, not 400 (research-openchami §2.2)."""
    return ApiError(500, "error decoding JSON " + msg)


def body() -> object:
    return json_body(decode_error)


def msg(status: int, message: str):
    """SMD's 'simple' reply: ``{"code":0,"message":...}`` with an integer code."""
    return reply({"code": 0, "message": message}, status)


def created(uris: list[str], collection: str):
    """201 with an array of ``{"URI"}`` and Location (one item: its URI, else the collection); [] -> 204."""
    if not uris:
        return empty(204)
    loc = uris[0] if len(uris) == 1 else collection
    return reply([{"URI": u} for u in uris], 201, headers={"Location": loc})


@bp.errorhandler(hsm.HsmError)
def _hsm_error(exc: hsm.HsmError):
    return ApiError(exc.status, exc.detail).response()


@bp.before_request
def _auth():
    rel = request.path.split(ROOT, 1)[-1].rstrip("/")
    public = request.method == "GET" and (rel.startswith("/service/") or rel in ("/State/Components",
                                                                               "/Inventory/EthernetInterfaces"))
    return check_face_auth(public=public)


# ---------------------------------------------------------------------------- service
@bp.get("/service/ready")
def ready():
    with lab().store.read() as c:
        c.execute("SELECT 1").fetchone()
    return msg(200, "HSM is healthy")


@bp.get("/service/liveness")
def liveness():
    return empty(204)


_VALUES = {"arch": ("Arch", hsm.ARCHES), "class": ("Class", hsm.CLASSES), "flag": ("Flag", hsm.FLAGS),
           "nettype": ("NetType", hsm.NET_TYPES), "role": ("Role", hsm.ROLES),
           "subrole": ("SubRole", hsm.SUBROLES), "state": ("State", hsm.STATES), "type": ("Type", hsm.TYPES)}


@bp.get("/service/values")
def values():
    return reply({key: list(vals) for key, vals in _VALUES.values()})


@bp.get("/service/values/<which>")
def values_one(which: str):
    if which not in _VALUES:
        raise ApiError(404, "404 page not found", style="text")
    key, vals = _VALUES[which]
    return reply({key: list(vals)})


# ---------------------------------------------------------------------------- components
def _components_reply(rows: list[tuple], fields: tuple[str, ...] | None):
    if fields is None:
        comps = [hsm.row_to_json(r) for r in rows]
    else:
        comps = [hsm.project(hsm.row_to_json(r), fields) for r in rows]
    return reply({"Components": comps})


@bp.get("/State/Components")
def components_get():
    f = hsm.parse_filter(query())
    with lab().store.read() as c:
        rows = hsm.select_rows(c, f)
    return _components_reply(rows, f.fields)


@bp.post("/State/Components")
def components_post():
    data = body()
    if not isinstance(data, dict):
        raise smd_error(500, "error decoding JSON json: cannot unmarshal into Go value of type sm.ComponentsPost")
    comps_in = data.get("Components") or []
    if not comps_in or not isinstance(comps_in, list) or not (isinstance(comps_in[0], dict) and comps_in[0].get("ID")):
        raise smd_error(400, "Missing Components")
    comps = [hsm.validate_component(c) for c in comps_in]
    force = bool(data.get("Force") or data.get("force"))
    with lab().store.write() as c:
        hsm.upsert_components(c, comps, force)
    return empty(204)


@bp.delete("/State/Components")
def components_delete_all():
    with lab().store.write() as c:
        n = c.execute("DELETE FROM components").rowcount
    if n == 0:
        raise smd_error(404, "no entries to delete")
    return msg(200, f"deleted {n} entries")


@bp.get("/State/Components/<xname>")
def component_get(xname: str):
    x = xn.normalize(xname)
    with lab().store.read() as c:
        comp = hsm.get_component(c, x)
    if comp is None:
        raise smd_error(404, "no such xname.")
    return reply(comp)


@bp.put("/State/Components/<xname>")
def component_put(xname: str):
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.ComponentPut")
    comp_in = data.get("Component") or data.get("component")
    if not isinstance(comp_in, dict):
        raise smd_error(400, "Missing Component")
    x = xn.normalize(xname)
    if comp_in.get("ID") and xn.normalize(comp_in["ID"]) != x:
        raise smd_error(400, "xname in URL and PUT body do not match")
    comp_in = dict(comp_in, ID=x)
    comp = hsm.validate_component(comp_in)
    with lab().store.write() as c:
        hsm.upsert_components(c, [comp], bool(data.get("Force") or data.get("force")))
    return empty(204)


@bp.delete("/State/Components/<xname>")
def component_delete(xname: str):
    x = xn.normalize(xname)
    if not xn.is_valid(x):
        raise smd_error(400, "invalid xname")
    with lab().store.write() as c:
        n = c.execute("DELETE FROM components WHERE id=?", (x,)).rowcount
    if not n:
        raise smd_error(404, "no such xname.")
    return msg(200, "deleted 1 entry")


@bp.get("/State/Components/ByNID/<nid>")
def component_by_nid(nid: str):
    try:
        n = int(nid)
    except ValueError:
        raise smd_error(400, "invalid NID") from None
    with lab().store.read() as c:
        r = c.execute(f"{hsm.SELECT} WHERE nid=? ORDER BY id LIMIT 1", (n,)).fetchone()
    if r is None:
        raise smd_error(404, "no such NID.")
    return reply(hsm.row_to_json(r))


def _body_filter(data: dict, ids_key: str) -> hsm.CompFilter:
    """A Query body (``ComponentIDs`` + lists of filter values + ``stateonly``...) as a CompFilter."""
    q: dict[str, list] = {}
    for key, value in data.items():
        k = key.lower()
        if value is None:
            continue
        if isinstance(value, bool):
            q[k] = ["true" if value else "false"]
        elif isinstance(value, list):
            q[k] = [str(v) for v in value]
        else:
            q[k] = [str(value)]
    if ids_key in q:
        q["id"] = q.pop(ids_key)
    return hsm.parse_filter(q)


@bp.post("/State/Components/Query")
def components_query():
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type main.CompQueryIn")
    f = _body_filter(data, "componentids")
    if f.ids is None:
        raise smd_error(400, "Missing IDs")
    with lab().store.read() as c:
        rows = hsm.select_rows(c, f)
    return _components_reply(rows, f.fields)


@bp.post("/State/Components/ByNID/Query")
def components_nid_query():
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type main.NIDQueryIn")
    ranges = data.pop("NIDRanges", None) or data.pop("nidranges", None) or []
    if not ranges:
        raise smd_error(400, "Missing NID ranges")
    starts, ends, nids = [], [], []
    for item in ranges:
        parts = str(item).split("-")
        if len(parts) > 1:
            if not parts[0] or not parts[-1]:
                raise smd_error(400, "bad query param: argument was not a valid NID Range")
            starts.append(parts[0])
            ends.append(parts[-1])
        elif str(item):
            nids.append(str(item))
    f = _body_filter(data, "componentids")
    pieces = [(int(a), int(b)) for a, b in zip(starts, ends)] if starts else []
    single = {int(n) for n in nids}
    with lab().store.read() as c:
        rows = [r for r in hsm.select_rows(c, f)
                if r[8] is not None and (r[8] in single or any(lo <= r[8] <= hi for lo, hi in pieces))]
    return _components_reply(rows, f.fields)


@bp.get("/State/Components/Query/<xname>")
def components_hierarchy(xname: str):
    parent = xn.normalize(xname)
    if parent not in ("all", "s0") and not xn.is_valid(parent):
        raise smd_error(400, "bad query param: Argument was not a valid xname ID")
    f = hsm.parse_filter(query())
    with lab().store.read() as c:
        rows = [r for r in hsm.select_rows(c, f) if xn.is_descendant(r[0], parent)]
    return _components_reply(rows, f.fields)


# ---------------------------------------------------------------------------- PATCH
def _patch_one(xname: str, sql: str, args: tuple):
    x = xn.normalize(xname)
    if not xn.is_valid(x):
        raise smd_error(400, "invalid xname")
    with lab().store.write() as c:
        n = c.execute(sql + " WHERE id=?", (*args, x)).rowcount
    if not n:
        raise smd_error(404, "no such xname.")
    return empty(204)


def _patch_bulk(ids: list, sql: str, args: tuple):
    if not isinstance(ids, list) or not ids:
        raise smd_error(400, "Missing IDs")
    norm = [xn.normalize(str(i)) for i in ids]
    bad = [i for i in norm if not xn.is_valid(i)]
    if bad:
        raise smd_error(400, f"invalid xname ID: {bad[0]}")
    with lab().store.write() as c:
        n = sum(c.execute(sql + " WHERE id=?", (*args, x)).rowcount for x in norm)
    if not n:
        raise smd_error(404, "no such xname.")
    return empty(204)


def _state_args(data: dict) -> tuple:
    state = hsm.canon(hsm.STATES, str(data.get("State", "")))
    if not state:
        raise smd_error(400, "invalid/missing State")
    flag = data.get("Flag") or "OK"
    flag_c = hsm.canon(hsm.FLAGS, str(flag))
    if not flag_c:
        raise smd_error(400, "invalid Flag")
    return state, flag_c


def _flag_args(data: dict) -> tuple:
    flag = hsm.canon(hsm.FLAGS, str(data.get("Flag", "")))
    if not flag:
        raise smd_error(400, "invalid/missing Flag")
    return (flag,)


def _enabled_args(data: dict) -> tuple:
    if not isinstance(data.get("Enabled"), bool):
        raise smd_error(400, "missing Enabled field")
    return (int(data["Enabled"]),)


def _swstatus_args(data: dict) -> tuple:
    if "SoftwareStatus" not in data:
        raise smd_error(400, "missing SoftwareStatus field")
    return (str(data["SoftwareStatus"]),)


def _role_args(data: dict) -> tuple:
    role = hsm.canon(hsm.ROLES, str(data.get("Role", "")))
    if not role:
        raise smd_error(400, "invalid/missing Role")
    sub = data.get("SubRole") or ""
    if sub:
        sub_c = hsm.canon(hsm.SUBROLES, str(sub))
        if not sub_c:
            raise smd_error(400, "invalid SubRole")
        sub = sub_c
    return role, sub


_PATCHES = {
    "StateData": ("UPDATE components SET state=?, flag=?", _state_args),
    "FlagOnly": ("UPDATE components SET flag=?", _flag_args),
    "Enabled": ("UPDATE components SET enabled=?", _enabled_args),
    "SoftwareStatus": ("UPDATE components SET software_status=?", _swstatus_args),
    "Role": ("UPDATE components SET role=?, subrole=?", _role_args),
}


@bp.patch("/State/Components/<xname>/<what>")
def component_patch(xname: str, what: str):
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value")
    if what == "NID":
        try:
            nid = int(data["NID"])
        except (KeyError, TypeError, ValueError):
            raise smd_error(400, "invalid/missing NID") from None
        return _patch_one(xname, "UPDATE components SET nid=?", (nid,))
    if what not in _PATCHES:
        raise ApiError(404, "404 page not found", style="text")
    sql, args = _PATCHES[what]
    return _patch_one(xname, sql, args(data))


@bp.patch("/State/Components/<bulk>")
def components_bulk_patch(bulk: str):
    if not bulk.startswith("Bulk"):
        raise ApiError(405, "Method Not Allowed", headers={"Allow": "GET, PUT, DELETE"})
    what = bulk[4:]
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value")
    if what == "NID":
        items = data.get("Components")
        if not isinstance(items, list) or not items:
            raise smd_error(400, "Missing Components")
        pairs = []
        for item in items:
            x = xn.normalize(str((item or {}).get("ID", "")))
            if not xn.is_valid(x):
                raise smd_error(400, f"invalid xname ID: {x}")
            try:
                pairs.append((int(item["NID"]), x))
            except (KeyError, TypeError, ValueError):
                raise smd_error(400, "invalid/missing NID") from None
        with lab().store.write() as c:
            c.executemany("UPDATE components SET nid=? WHERE id=?", pairs)
        return empty(204)
    if what not in _PATCHES:
        raise ApiError(404, "404 page not found", style="text")
    sql, args = _PATCHES[what]
    return _patch_bulk(data.get("ComponentIDs"), sql, args(data))


# Groups, partitions, memberships and EthernetInterfaces register their routes here.
from . import smd_groups, smd_inventory  # noqa: E402,F401
