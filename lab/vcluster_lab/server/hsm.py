"""SMD's data model over the store: component rows, enums, the component filter.

Shared by the SMD routes and by the engines that touch node state (PCS, BOS, admin).
Field names, their order and the omit-empty rules follow hms-base ``Component`` and
``sm.CompEthInterfaceV2`` as the Go services marshal them.
"""
from __future__ import annotations

import datetime
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import xname as xn

STATES = ["Unknown", "Empty", "Populated", "Off", "On", "Standby", "Halt", "Ready"]
FLAGS = ["OK", "Warning", "Alert", "Locked"]
FLAG_FILTER = FLAGS + ["Unknown"]  # accepted in filters and writes, not listed by /service/values
ROLES = ["Compute", "Service", "System", "Application", "Storage", "Management"]
SUBROLES = ["Master", "Worker", "Storage", "UAN", "Gateway", "LNETRouter", "Visualization", "UserDefined"]
ARCHES = ["X86", "ARM", "Other"]
ARCH_FILTER = ARCHES + ["UNKNOWN"]
CLASSES = ["River", "Mountain", "Hill"]
NET_TYPES = ["Sling", "Infiniband", "Ethernet", "OEM", "None"]
TYPES = xn.HMS_TYPES

# column, JSON key, enum list (None = free string), hmsds error noun
ENUM_FIELDS = {
    "type": ("type", "Type", TYPES, "HMS Type"),
    "state": ("state", "State", STATES, "HMS State"),
    "flag": ("flag", "Flag", FLAG_FILTER, "HMS Flag"),
    "role": ("role", "Role", ROLES, "HMS Role"),
    "subrole": ("subrole", "SubRole", SUBROLES, "HMS SubRole"),
    "arch": ("arch", "Arch", ARCH_FILTER, "HMS Arch"),
    "class": ("class", "Class", CLASSES, "HMS Class"),
    "nettype": ("net_type", "NetType", NET_TYPES, "HMS NetType"),
    "softwarestatus": ("software_status", "SoftwareStatus", None, ""),
    "subtype": ("subtype", "Subtype", None, ""),
}
COLUMNS = ("id", "type", "state", "flag", "enabled", "software_status", "role", "subrole", "nid",
           "subtype", "net_type", "arch", "class", "reservation_disabled", "locked")
SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM components"
FIELD_SETS = {"stateonly": ("ID", "Type", "State", "Flag"), "flagonly": ("ID", "Type", "Flag"),
              "roleonly": ("ID", "Type", "Role", "SubRole"), "nidonly": ("ID", "Type", "NID")}


class HsmError(Exception):
    """A validation or lookup failure with the HTTP status SMD would answer."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def canon(values: list[str], value: str) -> str | None:
    """The canonical spelling of an enum value, matched case-insensitively."""
    low = (value or "").lower()
    for v in values:
        if v.lower() == low:
            return v
    return None


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_to_json(r: tuple) -> dict:
    """One components row as SMD marshals it (empty fields omitted)."""
    d: dict[str, Any] = {"ID": r[0], "Type": r[1]}
    if r[2]:
        d["State"] = r[2]
    if r[3]:
        d["Flag"] = r[3]
    if r[4] is not None:
        d["Enabled"] = bool(r[4])
    if r[5]:
        d["SoftwareStatus"] = r[5]
    if r[6]:
        d["Role"] = r[6]
    if r[7]:
        d["SubRole"] = r[7]
    if r[8] is not None:
        d["NID"] = r[8]
    if r[9]:
        d["Subtype"] = r[9]
    if r[10]:
        d["NetType"] = r[10]
    if r[11]:
        d["Arch"] = r[11]
    if r[12]:
        d["Class"] = r[12]
    if r[13]:
        d["ReservationDisabled"] = True
    if r[14]:
        d["Locked"] = True
    return d


def project(d: dict, fields: tuple[str, ...] | None) -> dict:
    return d if fields is None else {k: d[k] for k in fields if k in d}


# ---------------------------------------------------------------------------- filter
@dataclass
class CompFilter:
    ids: set[str] | None = None
    enums: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict)  # column -> (in, not in)
    enabled: set[bool] | None = None
    nids: set[int] | None = None
    nid_ranges: list[tuple[int | None, int | None]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    locked: bool | None = None
    reservation_disabled: bool | None = None
    fields: tuple[str, ...] | None = None

    def empty(self) -> bool:
        return (self.ids is None and not self.enums and self.enabled is None and self.nids is None
                and not self.nid_ranges and not self.groups and not self.partitions
                and self.locked is None and self.reservation_disabled is None)


def _bool(value: str) -> bool:
    low = str(value).strip().lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise HsmError(400, "bad query param: Argument was not a valid boolean")


def _int(value: Any, what: str = "NID") -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise HsmError(400, f"bad query param: Argument was not a valid {what}") from None


def parse_filter(q: dict[str, list], *, ids_key: str = "id") -> CompFilter:
    """Build a CompFilter from lower-cased keys to lists of values (query string or Query body)."""
    f = CompFilter()
    raw_ids = [v for v in q.get(ids_key, []) if v != ""]
    if raw_ids:
        ids = set()
        for v in raw_ids:
            norm = xn.normalize(v)
            if not xn.is_valid(norm):
                raise HsmError(400, "bad query param: Argument was not a valid xname ID")
            ids.add(norm)
        f.ids = ids
    for key, (col, _, values, noun) in ENUM_FIELDS.items():
        raw = [v for v in q.get(key, []) if v != ""]
        if not raw:
            continue
        pos, neg = set(), set()
        for v in raw:
            neg_v = v.startswith("!")
            v = v[1:] if neg_v else v
            if values is not None:
                c = canon(values, v)
                if c is None:
                    raise HsmError(400, f"bad query param: Argument was not a valid {noun}")
                v = c
            (neg if neg_v else pos).add(v)
        f.enums[col] = (pos, neg)
    if q.get("enabled"):
        f.enabled = {_bool(v) for v in q["enabled"] if v != ""} or None
    if q.get("nid"):
        f.nids = {_int(v) for v in q["nid"] if v != ""} or None
    starts = [_int(v) for v in q.get("nid_start", []) if v != ""]
    ends = [_int(v) for v in q.get("nid_end", []) if v != ""]
    if starts or ends:
        if len(starts) == len(ends):
            f.nid_ranges = list(zip(starts, ends))
        else:
            f.nid_ranges = [(min(starts) if starts else None, max(ends) if ends else None)]
    f.groups = [v if v == "NULL" else v.lower() for v in q.get("group", []) if v != ""]
    f.partitions = [v if v == "NULL" else v.lower() for v in q.get("partition", []) if v != ""]
    if f.groups and f.partitions and (len(f.groups) > 1 or len(f.partitions) > 1):
        raise HsmError(400, "bad query param: group and partition cannot both have more than one value")
    if q.get("locked"):
        f.locked = _bool(q["locked"][0])
    if q.get("reservation_disabled"):
        f.reservation_disabled = _bool(q["reservation_disabled"][0])
    for key, fields in FIELD_SETS.items():
        vals = q.get(key) or []
        if vals and str(vals[0]).lower() in ("1", "t", "true"):
            f.fields = fields
            break
    return f


def _membership_sets(conn: sqlite3.Connection, f: CompFilter) -> tuple[set | None, set | None, set | None, set | None]:
    grp_in = grp_null = part_in = part_null = None
    labels = [g for g in f.groups if g != "NULL"]
    if labels:
        ph = ",".join("?" * len(labels))
        grp_in = {r[0] for r in conn.execute(f"SELECT xname FROM group_members WHERE label IN ({ph})", labels)}
    if "NULL" in f.groups:
        grp_null = {r[0] for r in conn.execute("SELECT DISTINCT xname FROM group_members")}
    names = [p for p in f.partitions if p != "NULL"]
    if names:
        ph = ",".join("?" * len(names))
        part_in = {r[0] for r in conn.execute(f"SELECT xname FROM partition_members WHERE name IN ({ph})", names)}
    if "NULL" in f.partitions:
        part_null = {r[0] for r in conn.execute("SELECT xname FROM partition_members")}
    return grp_in, grp_null, part_in, part_null


def select_rows(conn: sqlite3.Connection, f: CompFilter, ids: Iterable[str] | None = None) -> list[tuple]:
    """Component rows matching the filter, ordered by xname; one query plus at most four set queries."""
    want = set(ids) if ids is not None else None
    if f.ids is not None:
        want = f.ids if want is None else want & f.ids
    if want is not None and len(want) <= 500:
        if not want:
            return []
        ph = ",".join("?" * len(want))
        rows = conn.execute(f"{SELECT} WHERE id IN ({ph}) ORDER BY id", sorted(want)).fetchall()
    else:
        rows = conn.execute(f"{SELECT} ORDER BY id").fetchall()
        if want is not None:
            rows = [r for r in rows if r[0] in want]
    if f.empty():
        return rows
    grp_in, grp_null, part_in, part_null = _membership_sets(conn, f)
    col_idx = {c: i for i, c in enumerate(COLUMNS)}
    enum_checks = [(col_idx[col], pos, neg) for col, (pos, neg) in f.enums.items()]
    out = []
    for r in rows:
        ok = True
        for i, pos, neg in enum_checks:
            v = r[i]
            if (pos and v not in pos) or (neg and v in neg):
                ok = False
                break
        if not ok:
            continue
        if f.enabled is not None and (r[4] is None or bool(r[4]) not in f.enabled):
            continue
        nid = r[8]
        if f.nids is not None or f.nid_ranges:
            hit = nid is not None and f.nids is not None and nid in f.nids
            if not hit and nid is not None:
                for lo, hi in f.nid_ranges:
                    if (lo is None or nid >= lo) and (hi is None or nid <= hi):
                        hit = True
                        break
            if not hit:
                continue
        if f.groups:
            in_any = (grp_in is not None and r[0] in grp_in) or (grp_null is not None and r[0] not in grp_null)
            if not in_any:
                continue
        if f.partitions:
            in_any = (part_in is not None and r[0] in part_in) or (part_null is not None and r[0] not in part_null)
            if not in_any:
                continue
        if f.locked is not None and bool(r[14]) != f.locked:
            continue
        if f.reservation_disabled is not None and bool(r[13]) != f.reservation_disabled:
            continue
        out.append(r)
    return out


# ---------------------------------------------------------------------------- writes
def validate_component(c: dict, *, require_state: bool = True) -> dict:
    """Normalise one ComponentCreate as SMD's VerifyNormalize does; HsmError(400) otherwise."""
    if not isinstance(c, dict):
        raise HsmError(400, "couldn't validate components: component is not an object")
    cid = xn.normalize(str(c.get("ID", "")))
    ctype = xn.xname_type(cid)
    if not cid or ctype is None or ctype == "Partition":
        raise HsmError(400, f"couldn't validate components: xname ID '{c.get('ID', '')}' is invalid")
    out: dict[str, Any] = {"id": cid, "type": ctype}
    for key, (col, jkey, values, noun) in ENUM_FIELDS.items():
        if key == "type":
            continue
        raw = c.get(jkey)
        if raw in (None, ""):
            out[col] = ""
            continue
        if values is not None:
            v = canon(values, str(raw))
            if v is None:
                raise HsmError(400, f"couldn't validate components: invalid {noun} '{raw}'")
            out[col] = v
        else:
            out[col] = str(raw)
    if require_state and not out["state"]:
        raise HsmError(400, "couldn't validate components: State is required")
    if not out["flag"]:
        out["flag"] = "OK"
    enabled = c.get("Enabled")
    out["enabled"] = 1 if enabled is None else int(bool(enabled))
    nid = c.get("NID")
    if nid in (None, ""):
        out["nid"] = None
    else:
        try:
            out["nid"] = int(nid)
        except (TypeError, ValueError):
            raise HsmError(400, f"couldn't validate components: invalid NID '{nid}'") from None
    if ctype == "Node" and not out["role"]:
        out["role"] = "Compute"  # SMD's default role for a node created without one
    return out


def upsert_components(conn: sqlite3.Connection, comps: list[dict], force: bool) -> None:
    """Insert new components; existing ones change only with ``force`` (State, Flag, Subtype, NetType, Arch, Class)."""
    existing = {r[0] for r in conn.execute(
        f"SELECT id FROM components WHERE id IN ({','.join('?' * len(comps))})", [c["id"] for c in comps])} \
        if comps else set()
    for c in comps:
        if c["id"] in existing:
            if force:
                conn.execute("UPDATE components SET state=?, flag=?, subtype=?, net_type=?, arch=?, class=? "
                             "WHERE id=?", (c["state"], c["flag"], c["subtype"], c["net_type"], c["arch"],
                                            c["class"], c["id"]))
            continue
        defaults = {"reservation_disabled": 0, "locked": 0}
        conn.execute(f"INSERT INTO components({', '.join(COLUMNS)}) VALUES({', '.join('?' * len(COLUMNS))})",
                     tuple(c[col] if col in c else defaults.get(col, "") for col in COLUMNS))


def set_state(conn: sqlite3.Connection, xnames: list[str], state: str, flag: str = "OK") -> None:
    conn.executemany("UPDATE components SET state=?, flag=? WHERE id=?", [(state, flag, x) for x in xnames])


def get_component(conn: sqlite3.Connection, xname: str) -> dict | None:
    r = conn.execute(f"{SELECT} WHERE id=?", (xname,)).fetchone()
    return row_to_json(r) if r else None


# ---------------------------------------------------------------------------- interfaces
ETH_COLS = "id, description, mac, component_id, type, last_update, ip_addresses"


def eth_to_json(r: tuple) -> dict:
    return {"ID": r[0], "Description": r[1], "MACAddress": r[2], "LastUpdate": r[5],
            "ComponentID": r[3], "Type": r[4], "IPAddresses": json.loads(r[6])}


def node_network(conn: sqlite3.Connection, xname: str) -> tuple[str, str]:
    """(MAC, first IP) of a node's first EthernetInterface, ('', '') when none."""
    r = conn.execute("SELECT mac, ip_addresses FROM eth_interfaces WHERE component_id=? ORDER BY id LIMIT 1",
                     (xname,)).fetchone()
    if not r:
        return "", ""
    ips = json.loads(r[1])
    return r[0], (ips[0]["IPAddress"] if ips else "")


def component_by_ip(conn: sqlite3.Connection, ip: str) -> str | None:
    """The component whose EthernetInterface holds ``ip`` (what cloud-init does with a source address)."""
    for cid, ips in conn.execute("SELECT component_id, ip_addresses FROM eth_interfaces WHERE ip_addresses LIKE ?",
                                 (f'%"{ip}"%',)):
        if any(a.get("IPAddress") == ip for a in json.loads(ips)) and cid:
            return cid
    return None
