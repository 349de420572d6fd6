"""SMD groups, partitions and memberships (routes on the SMD blueprint).

Labels, tags and exclusiveGroup are lower-cased and must match ``^[-a-z0-9:._]+$``;
members must be valid xnames of existing components (400 ``linked component does not
exist``); one component per exclusiveGroup and per partition (409). OpenCHAMI SMD adds
``PUT /groups/{label}/members`` (replace the list); Cray's SMD has no such route, so the
CSM face answers it 405.
"""
from __future__ import annotations

import json
import re
import sqlite3

from . import hsm
from . import xname as xn
from .common import ApiError, empty, face, lab, query, reply
from .smd import ROOT, body, bp, created, decode_error, msg, smd_error

LABEL = re.compile(r"^[-a-z0-9:._]+$")
PARTITION_NAME = re.compile(r"^p\d+(\.\d+)?$")
GROUPS = ROOT + "/groups"
PARTITIONS = ROOT + "/partitions"


def _field(value: str) -> str:
    return (value or "").strip().lower()


def _ok_field(value: str) -> bool:
    return bool(LABEL.match(value))


def _member_ids(ids: object, what: str = "group") -> list[str]:
    if ids is None:
        return []
    if not isinstance(ids, list):
        raise smd_error(400, f"couldn't validate {what}: members.ids must be a list")
    out = []
    for raw in ids:
        x = xn.normalize(str(raw))
        if not xn.is_valid(x):
            raise smd_error(400, f"couldn't validate {what}: invalid xname ID: {raw}")
        out.append(x)
    return out


def _in_chunks(c: sqlite3.Connection, sql: str, ids: list[str], args: tuple = ()):
    """Rows of ``sql`` (ending in ``IN``) for ``ids``, 500 at a time (SQLite's variable limit)."""
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        yield from c.execute(f"{sql} ({','.join('?' * len(chunk))})", (*args, *chunk))


def _missing_components(c: sqlite3.Connection, ids: list[str]) -> list[str]:
    have = {r[0] for r in _in_chunks(c, "SELECT id FROM components WHERE id IN", ids)}
    return [x for x in ids if x not in have]


def _group_json(c: sqlite3.Connection, label: str, partition: str = "") -> dict | None:
    row = c.execute("SELECT label, description, tags, exclusive_group FROM groups_ WHERE label=?", (label,)).fetchone()
    if not row:
        return None
    if partition == "NULL":
        members = [r[0] for r in c.execute(
            "SELECT xname FROM group_members WHERE label=? AND xname NOT IN (SELECT xname FROM partition_members) "
            "ORDER BY xname", (label,))]
    elif partition:
        members = [r[0] for r in c.execute(
            "SELECT g.xname FROM group_members g JOIN partition_members p ON p.xname=g.xname "
            "WHERE g.label=? AND p.name=? ORDER BY g.xname", (label, partition))]
    else:
        members = [r[0] for r in c.execute("SELECT xname FROM group_members WHERE label=? ORDER BY xname", (label,))]
    out = {"label": row[0], "description": row[1]}
    tags = json.loads(row[2])
    if tags:
        out["tags"] = tags
    if row[3]:
        out["exclusiveGroup"] = row[3]
    out["members"] = {"ids": members}
    return out


def _partition_arg(q: dict) -> str:
    part = (q.get("partition") or [""])[0]
    if part and part != "NULL":
        part = _field(part)
        if not _ok_field(part):
            raise smd_error(400, "Invalid partition name.")
    return part


def _label_arg(label: str) -> str:
    norm = _field(label)
    if not _ok_field(norm):
        raise smd_error(400, "Invalid group label.")
    return norm


def _exclusive_conflict(c: sqlite3.Connection, excl: str, ids: list[str], label: str) -> bool:
    if not excl:
        return False
    return any(_in_chunks(c, "SELECT 1 FROM group_members WHERE exclusive_group=? AND label != ? AND xname IN",
                          ids, (excl, label)))


# ---------------------------------------------------------------------------- shared by groups and partitions
# (table, key column, member table, "group"/"partition"): both resources behave alike here.
GROUP = ("groups_", "label", "group_members", "group")
PARTITION = ("partitions", "name", "partition_members", "partition")


def _tags_arg(values: list, message: str) -> list[str]:
    tags = [_field(str(t)) for t in values]
    if any(not _ok_field(t) for t in tags):
        raise smd_error(400, message)
    return tags


def _exists(c: sqlite3.Connection, kind: tuple, key: str) -> bool:
    table, col = kind[0], kind[1]
    return c.execute(f"SELECT 1 FROM {table} WHERE {col}=?", (key,)).fetchone() is not None


def _delete(kind: tuple, key: str):
    table, col, _, what = kind
    with lab().store.write() as c:
        n = c.execute(f"DELETE FROM {table} WHERE {col}=?", (key,)).rowcount
    if not n:
        raise smd_error(404, f"no such {what}.")
    return msg(200, "deleted 1 entry")


def _patch(kind: tuple, key: str, data: dict):
    """PATCH description and/or tags (the only patchable fields of both)."""
    table, col, _, what = kind
    sets, args = [], []
    if data.get("description") is not None:
        sets.append("description=?")
        args.append(str(data["description"]))
    if data.get("tags") is not None:
        sets.append("tags=?")
        args.append(json.dumps(_tags_arg(data["tags"], "Invalid tag.")))
    with lab().store.write() as c:
        if not _exists(c, kind, key):
            raise smd_error(404, f"no such {what}.")
        if sets:
            c.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE {col}=?", (*args, key))
    return empty(204)


def _delete_member(kind: tuple, key: str, xname: str):
    _, col, members, what = kind
    x = xn.normalize(xname)
    if not xn.is_valid(x):
        raise smd_error(400, "invalid xname ID")
    with lab().store.write() as c:
        if not _exists(c, kind, key):
            raise smd_error(404, f"No such {what}: {key}")
        n = c.execute(f"DELETE FROM {members} WHERE {col}=? AND xname=?", (key, x)).rowcount
    if not n:
        raise smd_error(404, f"{what} has no such member.")
    return msg(200, "deleted 1 entry")


# ---------------------------------------------------------------------------- groups
@bp.get("/groups")
def groups_get():
    q = query()
    part = _partition_arg(q)
    tags = [_field(t) for t in q.get("tag", []) if t]
    labels = [_field(g) for g in q.get("group", []) if g]
    if any(not _ok_field(t) for t in tags):
        raise smd_error(400, "Invalid tag.")
    if any(not _ok_field(g) for g in labels):
        raise smd_error(400, "Invalid group label.")
    out = []
    with lab().store.read() as c:
        members: dict[str, list[str]] = {}
        if part:
            for label in [r[0] for r in c.execute("SELECT label FROM groups_ ORDER BY label")]:
                members[label] = _group_json(c, label, part)["members"]["ids"]
        else:
            for label, x in c.execute("SELECT label, xname FROM group_members ORDER BY label, xname"):
                members.setdefault(label, []).append(x)
        for label, desc, tag_json, excl in c.execute(
                "SELECT label, description, tags, exclusive_group FROM groups_ ORDER BY label"):
            if labels and label not in labels:
                continue
            gtags = json.loads(tag_json)
            if tags and not set(tags) & set(gtags):
                continue
            g = {"label": label, "description": desc}
            if gtags:
                g["tags"] = gtags
            if excl:
                g["exclusiveGroup"] = excl
            g["members"] = {"ids": members.get(label, [])}
            out.append(g)
    return reply(out)


@bp.post("/groups")
def groups_post():
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.Group")
    label = _field(str(data.get("label", "")))
    excl = _field(str(data.get("exclusiveGroup") or ""))
    invalid_chars = "couldn't validate group: group or partition field has invalid characters"
    if not label or not _ok_field(label) or (excl and not _ok_field(excl)):
        raise smd_error(400, invalid_chars)
    tags = _tags_arg(data.get("tags") or [], invalid_chars)
    ids = _member_ids((data.get("members") or {}).get("ids"))
    if len(set(ids)) != len(ids):
        raise smd_error(409, "operation would conflict with an existing group that has the same label "
                             "or duplicate ids found in request.")
    with lab().store.write() as c:
        if _exists(c, GROUP, label):
            raise smd_error(409, "operation would conflict with an existing group that has the same label "
                                 "or duplicate ids found in request.")
        if _missing_components(c, ids):
            raise smd_error(400, "linked component does not exist")
        if _exclusive_conflict(c, excl, ids, label):
            raise smd_error(409, "operation would conflict with an existing member in another exclusive group.")
        c.execute("INSERT INTO groups_(label, description, tags, exclusive_group) VALUES(?, ?, ?, ?)",
                  (label, str(data.get("description") or ""), json.dumps(tags), excl))
        c.executemany("INSERT INTO group_members(label, xname, exclusive_group) VALUES(?, ?, ?)",
                      [(label, x, excl) for x in ids])
    return created([f"{GROUPS}/{label}"], GROUPS)


@bp.get("/groups/labels")
def group_labels():
    with lab().store.read() as c:
        return reply([r[0] for r in c.execute("SELECT label FROM groups_ ORDER BY label")])


@bp.get("/groups/<label>")
def group_get(label: str):
    label = _label_arg(label)
    part = _partition_arg(query())
    with lab().store.read() as c:
        g = _group_json(c, label, part)
    if g is None:
        raise smd_error(404, f"No such group: {label}")
    return reply(g)


@bp.delete("/groups/<label>")
def group_delete(label: str):
    return _delete(GROUP, _label_arg(label))


@bp.patch("/groups/<label>")
def group_patch(label: str):
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.GroupPatch")
    if "description" not in data and "tags" not in data:
        raise smd_error(400, "Request must have at least one patch field.")
    return _patch(GROUP, _label_arg(label), data)


@bp.get("/groups/<label>/members")
def group_members_get(label: str):
    label = _label_arg(label)
    part = _partition_arg(query())
    with lab().store.read() as c:
        g = _group_json(c, label, part)
    if g is None:
        raise smd_error(404, f"No such group: {label}")
    return reply(g["members"])


@bp.post("/groups/<label>/members")
def group_members_post(label: str):
    label = _label_arg(label)
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.MemberAddBody")
    x = xn.normalize(str(data.get("id", "")))
    if not xn.is_valid(x):
        raise smd_error(400, "invalid xname ID")
    with lab().store.write() as c:
        row = c.execute("SELECT exclusive_group FROM groups_ WHERE label=?", (label,)).fetchone()
        if not row:
            raise smd_error(404, f"No such group: {label}")
        if c.execute("SELECT 1 FROM group_members WHERE label=? AND xname=?", (label, x)).fetchone():
            raise smd_error(409, "operation would conflict with an existing member in the same group.")
        if _missing_components(c, [x]):
            raise smd_error(400, "linked component does not exist")
        if _exclusive_conflict(c, row[0], [x], label):
            raise smd_error(409, "operation would conflict with an existing member in another exclusive group.")
        c.execute("INSERT INTO group_members(label, xname, exclusive_group) VALUES(?, ?, ?)", (label, x, row[0]))
    return created([f"{GROUPS}/{label}/members/{x}"], GROUPS)


@bp.put("/groups/<label>/members")
def group_members_put(label: str):
    if face() == "csm":  # Cray-HPE/hms-smd has no bulk member route
        raise ApiError(405, "Method Not Allowed", headers={"Allow": "GET, POST"})
    label = _label_arg(label)
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.MemberList")
    raw = data.get("ids") or []
    if not isinstance(raw, list):
        raise smd_error(400, "invalid xname IDs: ids must be a list")
    ids = [xn.normalize(str(i)) for i in raw]
    bad = [r for r, i in zip(raw, ids) if not xn.is_valid(i)]
    if bad:
        raise smd_error(400, f"invalid xname IDs: {bad}")
    ids = list(dict.fromkeys(ids))
    with lab().store.write() as c:
        row = c.execute("SELECT exclusive_group FROM groups_ WHERE label=?", (label,)).fetchone()
        if not row:
            raise smd_error(404, f"No such group: {label}")
        if _missing_components(c, ids):
            raise smd_error(400, "linked component does not exist")
        if _exclusive_conflict(c, row[0], ids, label):
            raise smd_error(409, "operation would conflict with an existing member in another exclusive group.")
        c.execute("DELETE FROM group_members WHERE label=?", (label,))
        c.executemany("INSERT INTO group_members(label, xname, exclusive_group) VALUES(?, ?, ?)",
                      [(label, x, row[0]) for x in ids])
    return created([f"{GROUPS}/{label}/members/{x}" for x in ids], f"{GROUPS}/{label}/members")


@bp.delete("/groups/<label>/members/<xname>")
def group_member_delete(label: str, xname: str):
    return _delete_member(GROUP, _label_arg(label), xname)


# ---------------------------------------------------------------------------- partitions
def _partition_json(c: sqlite3.Connection, name: str) -> dict | None:
    row = c.execute("SELECT name, description, tags FROM partitions WHERE name=?", (name,)).fetchone()
    if not row:
        return None
    out: dict = {"name": row[0]}
    if row[1]:
        out["description"] = row[1]
    tags = json.loads(row[2])
    if tags:
        out["tags"] = tags
    out["members"] = {"ids": [r[0] for r in c.execute(
        "SELECT xname FROM partition_members WHERE name=? ORDER BY xname", (name,))]}
    return out


def _pname_arg(name: str) -> str:
    norm = _field(name)
    if not _ok_field(norm):
        raise smd_error(400, "Invalid partition name.")
    return norm


@bp.get("/partitions")
def partitions_get():
    q = query()
    names = [_field(p) for p in q.get("partition", []) if p]
    tags = [_field(t) for t in q.get("tag", []) if t]
    if any(not _ok_field(n) for n in names):
        raise smd_error(400, "Invalid partition name.")
    if any(not _ok_field(t) for t in tags):
        raise smd_error(400, "Invalid tag.")
    out = []
    with lab().store.read() as c:
        for (name,) in c.execute("SELECT name FROM partitions ORDER BY name").fetchall():
            if names and name not in names:
                continue
            p = _partition_json(c, name)
            if tags and not set(tags) & set(p.get("tags", [])):
                continue
            out.append(p)
    return reply(out)


@bp.post("/partitions")
def partitions_post():
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.Partition")
    name = _field(str(data.get("name", "")))
    if not PARTITION_NAME.match(name):
        raise smd_error(400, "couldn't validate partition: partition name must be of the form p# or p#.#")
    tags = _tags_arg(data.get("tags") or [],
                     "couldn't validate partition: group or partition field has invalid characters")
    ids = _member_ids((data.get("members") or {}).get("ids"), "partition")
    with lab().store.write() as c:
        if _exists(c, PARTITION, name):
            raise smd_error(409, "operation would conflict with an existing partition that has the same name.")
        if _missing_components(c, ids):
            raise smd_error(400, "linked component does not exist")
        if len(set(ids)) != len(ids) or _in_partition(c, ids):
            raise smd_error(409, "operation would conflict with an existing member in another partition.")
        c.execute("INSERT INTO partitions(name, description, tags) VALUES(?, ?, ?)",
                  (name, str(data.get("description") or ""), json.dumps(tags)))
        c.executemany("INSERT INTO partition_members(name, xname) VALUES(?, ?)", [(name, x) for x in ids])
    return created([f"{PARTITIONS}/{name}"], PARTITIONS)


def _in_partition(c: sqlite3.Connection, ids: list[str]) -> bool:
    return any(_in_chunks(c, "SELECT 1 FROM partition_members WHERE xname IN", ids))


@bp.get("/partitions/names")
def partition_names():
    with lab().store.read() as c:
        return reply([r[0] for r in c.execute("SELECT name FROM partitions ORDER BY name")])


@bp.get("/partitions/<name>")
def partition_get(name: str):
    name = _pname_arg(name)
    with lab().store.read() as c:
        p = _partition_json(c, name)
    if p is None:
        raise smd_error(404, f"No such partition: {name}")
    return reply(p)


@bp.delete("/partitions/<name>")
def partition_delete(name: str):
    return _delete(PARTITION, _pname_arg(name))


@bp.patch("/partitions/<name>")
def partition_patch(name: str):
    name = _pname_arg(name)
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.PartitionPatch")
    if "description" not in data and "tags" not in data:
        raise smd_error(400, "Request must have at least one patch field.")
    return _patch(PARTITION, name, data)


@bp.get("/partitions/<name>/members")
def partition_members_get(name: str):
    name = _pname_arg(name)
    with lab().store.read() as c:
        p = _partition_json(c, name)
    if p is None:
        raise smd_error(404, f"No such partition: {name}")
    return reply(p["members"])


@bp.post("/partitions/<name>/members")
def partition_members_post(name: str):
    name = _pname_arg(name)
    data = body()
    if not isinstance(data, dict):
        raise decode_error("json: cannot unmarshal into Go value of type sm.MemberAddBody")
    x = xn.normalize(str(data.get("id", "")))
    with lab().store.write() as c:
        if not _exists(c, PARTITION, name):
            raise smd_error(404, f"No such partition: {name}")
        row = c.execute("SELECT name FROM partition_members WHERE xname=?", (x,)).fetchone()
        if row and row[0] == name:
            raise smd_error(409, "operation would conflict with an existing member in the same partition.")
        if row:
            raise smd_error(409, "operation would conflict with an existing member in another partition.")
        if _missing_components(c, [x]):
            raise smd_error(400, "linked component does not exist")
        c.execute("INSERT INTO partition_members(name, xname) VALUES(?, ?)", (name, x))
    return created([f"{PARTITIONS}/{name}/members/{x}"], PARTITIONS)


@bp.delete("/partitions/<name>/members/<xname>")
def partition_member_delete(name: str, xname: str):
    return _delete_member(PARTITION, _pname_arg(name), xname)


# ---------------------------------------------------------------------------- memberships
def memberships(c: sqlite3.Connection, rows: list[tuple]) -> list[dict]:
    """Membership records for component rows: two bulk queries, whatever the node count."""
    groups: dict[str, list[str]] = {}
    for x, label in c.execute("SELECT xname, label FROM group_members ORDER BY label"):
        groups.setdefault(x, []).append(label)
    parts = dict(c.execute("SELECT xname, name FROM partition_members").fetchall())
    return [{"id": r[0], "groupLabels": groups.get(r[0], []), "partitionName": parts.get(r[0], "")} for r in rows]


@bp.get("/memberships")
def memberships_get():
    f = hsm.parse_filter(query())
    with lab().store.read() as c:
        return reply(memberships(c, hsm.select_rows(c, f)))


@bp.get("/memberships/<xname>")
def membership_get(xname: str):
    x = xn.normalize(xname)
    if not xn.is_valid(x):
        raise smd_error(400, "invalid xname")
    with lab().store.read() as c:
        rows = c.execute(f"{hsm.SELECT} WHERE id=?", (x,)).fetchall()
        if not rows:
            raise smd_error(404, f"No such xname: {x}")
        return reply(memberships(c, rows)[0])

