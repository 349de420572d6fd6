"""OpenCHAMI cloud-init server: admin API and per-node data, at ``/cloud-init`` and at ``/``.

The real service serves at its root and the gateway strips ``/cloud-init``; the lab
serves both. It has no authentication (the JWT sub-router is empty), answers errors in
plain text, keys group meta-data as ``meta-data`` and spells ``cloud_provider`` with an
underscore. Nodes are identified by the request's source address through SMD
EthernetInterfaces (lab nodes call from their podman addresses);
``/admin/impersonation/{xname}/...`` answers as if that node had asked.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json

import yaml
from flask import Blueprint, request

from . import hsm
from .common import ApiError, empty, lab, reply, text

bp = Blueprint("cloud_init", __name__)

DEFAULT_KEYS = ["cloud_provider", "region", "availability-zone", "cluster-name", "public-keys", "base-url",
                "boot-subnet", "wg-subnet", "short-name", "nid-length"]


def _err(status: int, message: str) -> ApiError:
    return ApiError(status, message, style="text")


def defaults() -> dict:
    stored = lab().store.kv_get("ci.defaults", {}) or {}
    out = {}
    for k in DEFAULT_KEYS:
        zero = [] if k == "public-keys" else 0 if k == "nid-length" else ""
        out[k] = stored.get(k, zero)
    return out


def _base_url() -> str:
    return defaults().get("base-url") or request.host_url.rstrip("/") + "/cloud-init"


# ---------------------------------------------------------------------------- admin
@bp.get("/admin/cluster-defaults")
def defaults_get():
    return reply(defaults())


@bp.post("/admin/cluster-defaults")
def defaults_post():
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError as exc:
        raise _err(400, str(exc)) from None
    if not isinstance(data, dict):
        raise _err(400, "body must be a JSON object")
    stored = lab().store.kv_get("ci.defaults", {}) or {}
    for k in DEFAULT_KEYS:
        if data.get(k) not in (None, "", [], 0):
            stored[k] = data[k]
    lab().store.kv_set("ci.defaults", stored)
    return empty(201)


@bp.put("/admin/instance-info/<iid>")
def instance_info_put(iid: str):
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError as exc:
        raise _err(400, str(exc)) from None
    current = lab().store.doc_get("ci.instance", iid) or {}
    data = dict(data, id=iid)
    data["instance-id"] = current.get("instance-id") or _instance_id(iid)
    lab().store.doc_put("ci.instance", iid, data)
    return empty(201)


def _group_in(data: bytes, name: str | None = None) -> dict:
    try:
        group = json.loads(data or b"")
    except ValueError as exc:
        raise _err(422, str(exc)) from None
    if not isinstance(group, dict):
        raise _err(422, "group data must be a JSON object")
    if name is not None:
        group["name"] = name
    if not group.get("name"):
        raise _err(422, "name is required")
    f = group.get("file") or {}
    enc = f.get("encoding") or "plain"
    if enc not in ("plain", "base64"):
        raise _err(422, f"unknown encoding {enc!r}")
    out = {"name": group["name"], "description": str(group.get("description") or ""),
           "meta-data": group.get("meta-data") if isinstance(group.get("meta-data"), dict) else {},
           "file": {"content": str(f.get("content") or ""), "filename": str(f.get("filename") or ""),
                    "encoding": enc}}
    if isinstance(group.get("versions"), dict):
        out["versions"] = group["versions"]
    return out


@bp.get("/admin/groups")
def groups_get():
    groups = {g["name"]: g for g in lab().store.doc_list("ci.group")}
    return text(json.dumps(groups, indent="\t"), content_type="application/json")


@bp.post("/admin/groups")
def groups_post():
    group = _group_in(request.get_data())
    if not lab().store.doc_insert("ci.group", group["name"], group):
        raise _err(409, f"group '{group['name']}' not added as it already exists")
    return empty(201, headers={"Location": f"/groups/{group['name']}"})


@bp.get("/admin/groups/<gid>")
def group_get(gid: str):
    group = lab().store.doc_get("ci.group", gid)
    if group is None:
        raise _err(404, f"group ({gid}) not found in memstore")
    # the Go handler writes no content type, so net/http sniffs one
    return text(json.dumps(group), content_type="text/plain; charset=utf-8")


@bp.put("/admin/groups/<name>")
def group_put(name: str):
    group = _group_in(request.get_data(), name)
    lab().store.doc_put("ci.group", name, group)
    return empty(201, headers={"Location": f"/groups/{name}"})


@bp.delete("/admin/groups/<gid>")
def group_delete(gid: str):
    lab().store.doc_delete("ci.group", gid)
    return empty(200)


# ---------------------------------------------------------------------------- node data
def _instance_id(xname: str) -> str:
    return "i-" + hashlib.sha1(xname.encode()).hexdigest()[:8]


def _node_by_ip() -> str:
    with lab().store.read() as c:
        xname = hsm.component_by_ip(c, request.remote_addr or "")
    if not xname:
        raise _err(422, "")
    return xname


def _node_facts(xname: str) -> tuple[dict, list[str], str]:
    with lab().store.read() as c:
        comp = hsm.get_component(c, xname)
        groups = [r[0] for r in c.execute("SELECT label FROM group_members WHERE xname=? ORDER BY label", (xname,))]
        _, ip = hsm.node_network(c, xname)
    if comp is None:
        raise _err(404, f"node {xname} not found in SMD")
    return comp, groups, ip


def meta_data(xname: str) -> str:
    comp, groups, ip = _node_facts(xname)
    d = defaults()
    info = lab().store.doc_get("ci.instance", xname) or {}
    nid = int(comp.get("NID", 0) or 0)
    short = d["short-name"] or (d["cluster-name"] or "nid")[:2]
    hostname = info.get("hostname") or f"{short}{nid:0{d['nid-length'] or 4}d}"
    cluster = info.get("cluster-name") or d["cluster-name"]
    group_data = {}
    for g in groups:
        stored = lab().store.doc_get("ci.group", g) or {}
        group_data[g] = dict({"Description": stored.get("description", "")}, **(stored.get("meta-data") or {}))
    cabinet = xname.split("c", 1)[0] if xname.startswith("x") else ""
    md = {
        "instance-id": info.get("instance-id") or _instance_id(xname),
        "local-hostname": info.get("local-hostname") or hostname,
        "hostname": hostname,
        "cluster-name": cluster,
        "instance_data": {"v1": {
            "cloud_name": "OpenCHAMI",
            "availability_zone": info.get("availability-zone") or d["availability-zone"],
            "instance_id": info.get("instance-id") or _instance_id(xname),
            "instance_type": info.get("instance-type", ""),
            "local_hostname": hostname,
            "region": info.get("region") or d["region"],
            "hostname": hostname,
            "local_ipv4": ip,
            "cloud_provider": info.get("cloud-provider") or d["cloud_provider"],
            "public_keys": info.get("public-keys") or d["public-keys"],
            "vendor_data": {"version": "1.0", "cloud_init_base_url": _base_url(), "rack": cabinet,
                            "nid": nid, "role": comp.get("Role", ""), "sub_role": comp.get("SubRole", ""),
                            "cabinet": cabinet, "location": xname, "cluster_name": cluster,
                            "groups": group_data},
        }},
    }
    return yaml.safe_dump(md, sort_keys=False)


def vendor_data(xname: str) -> str:
    _, groups, _ = _node_facts(xname)
    base = _base_url()
    return "#include\n" + "".join(f"{base}/{g}.yaml\n" for g in groups)


def group_yaml(xname: str, group: str) -> str:
    _, groups, _ = _node_facts(xname)
    if group not in groups:
        raise _err(404, f"node {xname} is not a member of group {group}")
    stored = lab().store.doc_get("ci.group", group)
    if not stored or not (stored.get("file") or {}).get("content"):
        return "#cloud-config\n"
    f = stored["file"]
    if f.get("encoding") == "base64":
        try:
            return base64.b64decode(f["content"]).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _err(500, f"group {group}: content is not valid base64") from None
    return f["content"]


@bp.get("/meta-data")
def node_meta_data():
    return text(meta_data(_node_by_ip()), content_type="application/x-yaml")


@bp.get("/user-data")
def node_user_data():
    return text("#cloud-config", content_type="text/plain; charset=utf-8")


@bp.get("/vendor-data")
def node_vendor_data():
    return text(vendor_data(_node_by_ip()))


@bp.get("/<group>.yaml")
def node_group(group: str):
    return text(group_yaml(_node_by_ip(), group))


@bp.get("/admin/impersonation/<xname>/meta-data")
def imp_meta_data(xname: str):
    return text(meta_data(xname), content_type="application/x-yaml")


@bp.get("/admin/impersonation/<xname>/user-data")
def imp_user_data(xname: str):
    return text("#cloud-config", content_type="text/plain; charset=utf-8")


@bp.get("/admin/impersonation/<xname>/vendor-data")
def imp_vendor_data(xname: str):
    return text(vendor_data(xname))


@bp.get("/admin/impersonation/<xname>/<group>.yaml")
def imp_group(xname: str, group: str):
    return text(group_yaml(xname, group))


@bp.get("/version")
def version():
    return reply({"version": "vcluster-lab", "commit": "", "date": ""})
