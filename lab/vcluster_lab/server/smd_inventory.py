"""SMD Inventory/EthernetInterfaces: MAC <-> IP <-> xname (routes on the SMD blueprint).

The ID is the lower-case MAC without separators. ``POST`` answers a single
``{"URI": ...}`` object (not the array other SMD creations return); ``PATCH`` answers the
updated record; deleting the whole collection when empty is a 404.
"""
from __future__ import annotations

import ipaddress
import json
import re

from . import hsm
from . import xname as xn
from .common import lab, query, reply
from .smd import ROOT, body, bp, decode_error, msg, smd_error

BASE = ROOT + "/Inventory/EthernetInterfaces"
_HEX = re.compile(r"^[0-9a-f]{12}$")


def normalize_mac(raw: str) -> str:
    """``9A-99-99-99-99-99`` / ``9a9999999999`` -> ``9a:99:99:99:99:99``, else smd_error 400."""
    hexes = re.sub(r"[:\-.]", "", (raw or "").strip().lower())
    if not _HEX.match(hexes):
        raise smd_error(400, f"Invalid MAC address: '{raw}'")
    return ":".join(hexes[i:i + 2] for i in range(0, 12, 2))


def _ips(raw: object) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise smd_error(400, "IPAddresses must be a list")
    out = []
    for item in raw:
        ip = str((item or {}).get("IPAddress", ""))
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise smd_error(400, f"invalid IP address: '{ip}'") from None
        out.append({"IPAddress": ip, "Network": str(item.get("Network", ""))} if item.get("Network")
                   else {"IPAddress": ip})
    return out


def _component(raw: object) -> tuple[str, str]:
    if not raw:
        return "", ""
    x = xn.normalize(str(raw))
    t = xn.xname_type(x)
    if t is None:
        raise smd_error(400, f"invalid xname ID: '{raw}'")
    return x, t


@bp.get("/Inventory/EthernetInterfaces")
def eth_list():
    q = query()
    clauses, args = [], []
    if q.get("id"):
        ids = [i.lower() for i in q["id"]]
        if any(not i for i in ids):
            raise smd_error(400, "Invalid component ethernet interface ID.")
        clauses.append(f"id IN ({','.join('?' * len(ids))})")
        args += ids
    if q.get("macaddress"):
        macs = [m.lower() for m in q["macaddress"]]
        if any(not m for m in macs):
            raise smd_error(400, "Invalid component ethernet interface MAC address.")
        clauses.append(f"mac IN ({','.join('?' * len(macs))})")
        args += macs
    if q.get("componentid"):
        comps = []
        for raw in q["componentid"]:
            norm = xn.normalize(raw)
            if raw and xn.xname_type(norm) is None:
                raise smd_error(400, "Invalid CompID.")
            comps.append(norm)
        clauses.append(f"component_id IN ({','.join('?' * len(comps))})")
        args += comps
    if q.get("type"):
        types = []
        for raw in q["type"]:
            t = hsm.canon(hsm.TYPES, raw)
            if not t:
                raise smd_error(400, "Invalid HMS type.")
            types.append(t)
        clauses.append(f"type IN ({','.join('?' * len(types))})")
        args += types
    if q.get("olderthan"):
        clauses.append("last_update < ?")
        args.append(q["olderthan"][0])
    if q.get("newerthan"):
        clauses.append("last_update > ?")
        args.append(q["newerthan"][0])
    sql = f"SELECT {hsm.ETH_COLS} FROM eth_interfaces"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    with lab().store.read() as c:
        items = [hsm.eth_to_json(r) for r in c.execute(sql + " ORDER BY id", args)]
    if "ipaddress" in q:
        wanted = set(q["ipaddress"])
        items = [i for i in items if ({a["IPAddress"] for a in i["IPAddresses"]} & wanted)
                 or ("" in wanted and not i["IPAddresses"])]
    if q.get("network"):
        nets = set(q["network"])
        items = [i for i in items if any(a.get("Network", "") in nets for a in i["IPAddresses"])]
    return reply(items)


@bp.post("/Inventory/EthernetInterfaces")
def eth_post():
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.CompEthInterfaceV2")
    mac = normalize_mac(str(data.get("MACAddress", "")))
    cid, ctype = _component(data.get("ComponentID"))
    ips = _ips(data.get("IPAddresses"))
    eid = mac.replace(":", "")
    with lab().store.write() as c:
        if c.execute("SELECT 1 FROM eth_interfaces WHERE id=?", (eid,)).fetchone():
            raise smd_error(409, "operation would conflict with an existing component ethernet interface "
                                 "that has the same MAC address.")
        c.execute(f"INSERT INTO eth_interfaces({hsm.ETH_COLS}) VALUES(?, ?, ?, ?, ?, ?, ?)",
                  (eid, str(data.get("Description") or ""), mac, cid, ctype, hsm.now_rfc3339(), json.dumps(ips)))
    uri = f"{BASE}/{eid}"
    return reply({"URI": uri}, 201, headers={"Location": uri})


@bp.delete("/Inventory/EthernetInterfaces")
def eth_delete_all():
    with lab().store.write() as c:
        n = c.execute("DELETE FROM eth_interfaces").rowcount
    if not n:
        raise smd_error(404, "no entries to delete")
    return msg(200, f"deleted {n} entries")


def _get(c, eid: str) -> dict | None:
    r = c.execute(f"SELECT {hsm.ETH_COLS} FROM eth_interfaces WHERE id=?", (eid.lower(),)).fetchone()
    return hsm.eth_to_json(r) if r else None


@bp.get("/Inventory/EthernetInterfaces/<eid>")
def eth_get(eid: str):
    with lab().store.read() as c:
        item = _get(c, eid)
    if item is None:
        raise smd_error(404, f"No such component ethernet interface: {eid.lower()}")
    return reply(item)


@bp.patch("/Inventory/EthernetInterfaces/<eid>")
def eth_patch(eid: str):
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.CompEthInterfaceV2Patch")
    if not any(k in data for k in ("Description", "IPAddresses", "ComponentID")):
        raise smd_error(400, "Request must have at least one patch field.")
    with lab().store.write() as c:
        item = _get(c, eid)
        if item is None:
            raise smd_error(404, "no such component ethernet interface.")
        if "Description" in data:
            c.execute("UPDATE eth_interfaces SET description=? WHERE id=?", (str(data["Description"] or ""), item["ID"]))
        if "ComponentID" in data:
            cid, ctype = _component(data["ComponentID"])
            c.execute("UPDATE eth_interfaces SET component_id=?, type=? WHERE id=?", (cid, ctype, item["ID"]))
        if "IPAddresses" in data:  # LastUpdate moves only when addresses change
            c.execute("UPDATE eth_interfaces SET ip_addresses=?, last_update=? WHERE id=?",
                      (json.dumps(_ips(data["IPAddresses"])), hsm.now_rfc3339(), item["ID"]))
        item = _get(c, eid)
    return reply(item)


@bp.delete("/Inventory/EthernetInterfaces/<eid>")
def eth_delete(eid: str):
    with lab().store.write() as c:
        n = c.execute("DELETE FROM eth_interfaces WHERE id=?", (eid.lower(),)).rowcount
    if not n:
        raise smd_error(404, "no such component ethernet interface.")
    return msg(200, "deleted 1 entry")


@bp.get("/Inventory/EthernetInterfaces/<eid>/IPAddresses")
def eth_ips_get(eid: str):
    with lab().store.read() as c:
        item = _get(c, eid)
    if item is None:
        raise smd_error(404, f"No such component ethernet interface: {eid}")
    return reply(item["IPAddresses"])


@bp.post("/Inventory/EthernetInterfaces/<eid>/IPAddresses")
def eth_ips_post(eid: str):
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.IPAddressMapping")
    new = _ips([data])[0]
    with lab().store.write() as c:
        item = _get(c, eid)
        if item is None:
            raise smd_error(404, f"No such component ethernet interface: {eid}")
        if any(a["IPAddress"] == new["IPAddress"] for a in item["IPAddresses"]):
            raise smd_error(409, "operation would conflict with an existing IP Address on the same ethernet interface.")
        c.execute("UPDATE eth_interfaces SET ip_addresses=?, last_update=? WHERE id=?",
                  (json.dumps(item["IPAddresses"] + [new]), hsm.now_rfc3339(), item["ID"]))
    uri = f"{BASE}/{item['ID']}/IPAddresses/{new['IPAddress']}"
    return reply({"URI": uri}, 201, headers={"Location": uri})


@bp.patch("/Inventory/EthernetInterfaces/<eid>/IPAddresses/<ip>")
def eth_ip_patch(eid: str, ip: str):
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.IPAddressMappingPatch")
    with lab().store.write() as c:
        item = _get(c, eid)
        found = None
        for a in (item or {}).get("IPAddresses", []):
            if a["IPAddress"] == ip:
                found = a
        if item is None or found is None:
            raise smd_error(404, "no such IP address in component ethernet interface.")
        if data.get("Network") is not None:
            found["Network"] = str(data["Network"])
        c.execute("UPDATE eth_interfaces SET ip_addresses=?, last_update=? WHERE id=?",
                  (json.dumps(item["IPAddresses"]), hsm.now_rfc3339(), item["ID"]))
    return reply(found)


@bp.delete("/Inventory/EthernetInterfaces/<eid>/IPAddresses/<ip>")
def eth_ip_delete(eid: str, ip: str):
    with lab().store.write() as c:
        item = _get(c, eid)
        if item is None:
            raise smd_error(404, f"No such component ethernet interface: {eid}")
        rest = [a for a in item["IPAddresses"] if a["IPAddress"] != ip]
        if len(rest) == len(item["IPAddresses"]):
            raise smd_error(404, "component ethernet interface has no such ip address.")
        c.execute("UPDATE eth_interfaces SET ip_addresses=?, last_update=? WHERE id=?",
                  (json.dumps(rest), hsm.now_rfc3339(), item["ID"]))
    return msg(200, "deleted 1 entry")
