"""NVIDIA UFM REST under ``/ufmRest`` (HTTP Basic auth with the lab's UFM credentials).

PKeys: ``POST resources/pkeys/add`` (empty PKey), ``POST resources/pkeys`` (add GUIDs,
creating the PKey), ``GET resources/pkeys[?guids_data=true]`` (map keyed by PKey),
``GET resources/pkeys/{pkey}`` (``{}`` with 200 when missing, as UFM does),
``DELETE resources/pkeys/{pkey}/guids/{g1,g2}`` and the legacy
``POST actions/remove_guids_from_pkey``, ``DELETE resources/pkeys/{pkey}``.

Where a client finds a node's port GUID: ``GET resources/ports``, as on a real UFM, lists
one HCA port per SMD node with ``guid``, ``system_name`` (the node hostname, from its
EthernetInterface Description) and ``node_description`` (``<hostname> HCA-1``). The GUID
is deterministic (inventory_data.ib_guid_for). PKeys are records only: podman has no
InfiniBand, so membership does not change any node's networking.
"""
from __future__ import annotations

import base64
import re

from flask import Blueprint, request

from .. import inventory_data as inv
from .common import ApiError, json_body, lab, query, reply, text

bp = Blueprint("ufm", __name__)
GUID = re.compile(r"^(0x)?[0-9a-fA-F]{16,20}$")


def err(status: int, message: str) -> ApiError:
    return ApiError(status, message, style="json")


@bp.before_request
def _auth():
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _, pw = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user = pw = ""
        if lab().creds.check_ufm(user, pw):
            return None
    resp = text("Unauthorized", 401)
    resp.headers["WWW-Authenticate"] = 'Basic realm="UFM"'
    return resp


def _pkey(raw: object) -> str:
    s = str(raw or "").strip().lower()
    try:
        value = int(s, 16)
    except ValueError:
        raise err(400, f"Invalid pkey {raw!r}: expected a hex string such as 0x0a12") from None
    if not 0 < value < 0x7FFF:
        raise err(400, f"pkey {raw!r} out of range (0x1-0x7ffe)")
    return f"0x{value:x}"


def _guid(raw: object) -> str:
    s = str(raw or "").strip()
    if not GUID.match(s):
        raise err(400, f"Invalid GUID {raw!r}")
    return s.lower().removeprefix("0x")


def _bad_json(msg: str) -> ApiError:
    return err(400, f"Invalid JSON: {msg}")


def _view(p: dict, guids_data: bool, qos: bool) -> dict:
    out = {"partition": p["partition"], "ip_over_ib": p["ip_over_ib"]}
    if guids_data:
        out["guids"] = [dict(g) for g in p["guids"]]
    if qos:
        out.update({k: p[k] for k in ("mtu_limit", "service_level", "rate_limit")})
    return out


def _flags() -> tuple[bool, bool]:
    q = query()
    return (q.get("guids_data", ["false"])[0].lower() == "true", q.get("qos_conf", ["false"])[0].lower() == "true")


def _new(pkey: str, data: dict) -> dict:
    return {"pkey": pkey, "partition": str(data.get("partition_name") or f"pkey_{pkey}"),
            "ip_over_ib": bool(data.get("ip_over_ib", True)), "index0": bool(data.get("index0", False)),
            "mtu_limit": int(data.get("mtu_limit", 2)), "service_level": int(data.get("service_level", 0)),
            "rate_limit": float(data.get("rate_limit", 2.5)), "guids": []}


@bp.get("/resources/pkeys")
def pkeys_get():
    guids_data, qos = _flags()
    return reply({p["pkey"]: _view(p, guids_data, qos) for p in lab().store.doc_list("ufm.pkey")})


@bp.get("/resources/pkeys/<pkey>")
def pkey_get(pkey: str):
    p = lab().store.doc_get("ufm.pkey", _pkey(pkey))
    if p is None:
        return reply({})
    guids_data, qos = _flags()
    return reply(_view(p, guids_data, qos))


@bp.post("/resources/pkeys/add")
def pkey_add():
    data = json_body(_bad_json)
    if not isinstance(data, dict):
        raise err(400, "body must be a JSON object")
    pkey = _pkey(data.get("pkey"))
    if not lab().store.doc_insert("ufm.pkey", pkey, _new(pkey, data)):
        raise err(400, f"PKey {pkey} already exists")
    return text("", 200)


@bp.post("/resources/pkeys")
def pkey_guids_add():
    data = json_body(_bad_json)
    if not isinstance(data, dict):
        raise err(400, "body must be a JSON object")
    pkey = _pkey(data.get("pkey"))
    guids = [_guid(g) for g in data.get("guids") or []]
    if not guids:
        raise err(400, "guids must be a non-empty list")
    if "membership" in data and "memberships" in data:
        raise err(400, "membership and memberships are mutually exclusive")
    if "memberships" in data:
        members = list(data["memberships"])
        if len(members) != len(guids):
            raise err(400, "memberships must have one entry per GUID")
    else:
        members = [data.get("membership", "full")] * len(guids)
    if any(m not in ("full", "limited") for m in members):
        raise err(400, "membership must be full or limited")
    p = lab().store.doc_get("ufm.pkey", pkey) or _new(pkey, data)
    index0 = bool(data.get("index0", False))
    current = {g["guid"]: g for g in p["guids"]}
    for g, m in zip(guids, members):
        current[g] = {"guid": g, "membership": m, "index0": index0}
    p["guids"] = sorted(current.values(), key=lambda g: g["guid"])
    if "ip_over_ib" in data:
        p["ip_over_ib"] = bool(data["ip_over_ib"])
    lab().store.doc_put("ufm.pkey", pkey, p)
    return text("", 200)


def _remove(pkey: str, guids: list[str]):
    p = lab().store.doc_get("ufm.pkey", pkey)
    if p is None:
        raise err(404, f"PKey {pkey} not found")
    drop = set(guids)
    p["guids"] = [g for g in p["guids"] if g["guid"] not in drop]
    lab().store.doc_put("ufm.pkey", pkey, p)
    return text("", 200)


@bp.delete("/resources/pkeys/<pkey>/guids/<guids>")
def pkey_guids_remove(pkey: str, guids: str):
    return _remove(_pkey(pkey), [_guid(g) for g in guids.split(",") if g])


@bp.post("/actions/remove_guids_from_pkey")
def pkey_guids_remove_legacy():
    data = json_body(_bad_json)
    if not isinstance(data, dict):
        raise err(400, "body must be a JSON object")
    return _remove(_pkey(data.get("pkey")), [_guid(g) for g in data.get("guids") or []])


@bp.delete("/resources/pkeys/<pkey>")
def pkey_delete(pkey: str):
    if not lab().store.doc_delete("ufm.pkey", _pkey(pkey)):
        raise err(404, f"PKey {pkey} not found")
    return text("", 200)


# ---------------------------------------------------------------------------- inventory
def _hosts() -> list[tuple[str, str]]:
    """(xname, hostname) of every SMD node; hostname from its first EthernetInterface Description."""
    with lab().store.read() as c:
        names = dict(c.execute("SELECT component_id, description FROM eth_interfaces WHERE description != '' "
                               "ORDER BY id DESC").fetchall())
        rows = c.execute("SELECT id, nid FROM components WHERE type='Node' ORDER BY id").fetchall()
    return [(x, names.get(x) or (inv.hostname_for(nid) if nid is not None else x)) for x, nid in rows]


@bp.get("/resources/ports")
def ports():
    out = []
    for x, host in _hosts():
        guid = inv.ib_guid_for(x)
        out.append({"name": f"{guid}_1", "guid": guid, "number": 1, "external_number": 1,
                    "system_id": guid, "system_name": host, "node_description": f"{host} HCA-1",
                    "dname": "HCA-1/1", "description": "Computer IB Port", "physical_state": "Link Up",
                    "logical_state": "Active", "active_speed": "HDR", "active_width": "4x",
                    "severity": "Info", "lid": (int(guid[-4:], 16) % 49151) + 1, "tier": 1})
    return reply(out)


@bp.get("/resources/systems")
def systems():
    return reply([{"system_name": host, "guid": inv.ib_guid_for(x), "type": "host",
                   "description": f"{host} ({x})", "ports": [f"{inv.ib_guid_for(x)}_1"]} for x, host in _hosts()])


@bp.get("/app/ufm_version")
def version():
    return reply({"ufm_release_version": "6.22.0-vcluster-lab"})
