"""BOS v2 under ``/apis/bos``: session templates, sessions, components, options.

Reproduced: template PUT answers 200 with ``name`` overwritten from the path and boot-set
``name``s stripped; unknown fields anywhere are rejected (``additionalProperties: false``,
400); ``Cray-Tenant-Name`` scopes templates and sessions (another tenant's are 404);
session POST answers 201 and the session really runs (bos_runner). Not reproduced:
staged sessions and ``applystaged``, CFS configuration of booted nodes.
"""
from __future__ import annotations

import datetime
import re
import uuid

from flask import Blueprint, request

from .bos_runner import SessionError, boot_artifacts, default_component, now_iso
from .common import ApiError, check_gateway_auth, empty, json_body, lab, query, reply

bp = Blueprint("bos_csm", __name__)
NAME = re.compile(r"^[a-zA-Z0-9](?:[-._a-zA-Z0-9]{0,125}[a-zA-Z0-9])?$")
TEMPLATE_KEYS = {"boot_sets", "cfs", "description", "enable_cfs", "links", "name", "tenant"}
BOOT_SET_KEYS = {"arch", "cfs", "etag", "kernel_parameters", "name", "node_groups", "node_list",
                 "node_roles_groups", "path", "rootfs_provider", "rootfs_provider_passthrough", "type"}
SESSION_KEYS = {"include_disabled", "limit", "name", "operation", "stage", "template_name"}
OPTIONS_DEFAULT = {
    "bss_read_timeout": 20, "cfs_read_timeout": 20, "cleanup_completed_session_ttl": "7d", "clear_stage": False,
    "component_actual_state_ttl": "4h", "default_retry_policy": 3, "disable_components_on_completion": True,
    "discovery_frequency": 300, "hsm_read_timeout": 20, "ims_errors_fatal": False, "ims_images_must_exist": False,
    "ims_read_timeout": 20, "logging_level": "INFO", "max_boot_wait_time": 1200, "max_component_batch_size": 2800,
    "max_power_off_wait_time": 300, "max_power_on_wait_time": 120, "pcs_read_timeout": 20,
    "polling_frequency": 15, "reject_nids": False, "session_limit_required": False,
}


def bad(detail: str) -> ApiError:
    return ApiError(400, detail)


def not_found(detail: str) -> ApiError:
    return ApiError(404, detail, title="The resource was not found")


def _json_error(msg: str) -> ApiError:
    return bad(f"Request body is not valid JSON: {msg}")


@bp.before_request
def _auth():
    return check_gateway_auth()


def tenant() -> str:
    return request.headers.get("Cray-Tenant-Name", "") or ""


def _extra(obj: dict, allowed: set[str], where: str = "") -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        names = ", ".join(repr(e) for e in extra)
        verb = "was" if len(extra) == 1 else "were"
        raise bad(f"Additional properties are not allowed ({names} {verb} unexpected){where}")


# ---------------------------------------------------------------------------- templates
def validate_template(name: str, data: object) -> dict:
    """Check a session template like BOS's schema + validate_sanitize_session_template; return what is stored."""
    if not NAME.match(name):
        raise bad(f"'{name}' does not match '{NAME.pattern}'")
    if not isinstance(data, dict):
        raise bad("Session template must be a JSON object")
    _extra(data, TEMPLATE_KEYS)
    boot_sets = data.get("boot_sets")
    if not isinstance(boot_sets, dict) or not boot_sets:
        raise bad("'boot_sets' is a required property and must hold at least one boot set")
    out_sets = {}
    for bs_name, bs in boot_sets.items():
        if not NAME.match(bs_name):
            raise bad(f"Boot set name '{bs_name}' does not match '{NAME.pattern}'")
        if not isinstance(bs, dict):
            raise bad(f"Boot set '{bs_name}' must be an object")
        _extra(bs, BOOT_SET_KEYS, f" in boot set '{bs_name}'")
        for req in ("path", "type"):
            if not isinstance(bs.get(req), str) or not bs[req]:
                raise bad(f"'{req}' is a required property of boot set '{bs_name}'")
        if "name" in bs and bs["name"] != bs_name:
            raise bad(f"Boot set name '{bs['name']}' does not match its key '{bs_name}'")
        if not any(bs.get(k) for k in ("node_list", "node_groups", "node_roles_groups")):
            raise bad(f"Boot set '{bs_name}' has none of node_list, node_groups, node_roles_groups")
        if bs.get("arch", "X86") not in ("X86", "ARM", "Other", "Unknown"):
            raise bad(f"'{bs['arch']}' is not one of ['X86', 'ARM', 'Other', 'Unknown']")
        for key in ("node_list", "node_groups", "node_roles_groups"):
            if key in bs and (not isinstance(bs[key], list) or not all(isinstance(v, str) and v for v in bs[key])):
                raise bad(f"'{key}' of boot set '{bs_name}' must be a non-empty list of strings")
        if isinstance(bs.get("cfs"), dict):
            _extra(bs["cfs"], {"configuration"}, f" in boot set '{bs_name}' cfs")
        out_sets[bs_name] = {k: v for k, v in bs.items() if k != "name"}
    if isinstance(data.get("cfs"), dict):
        _extra(data["cfs"], {"configuration"}, " in cfs")
    if "enable_cfs" in data and not isinstance(data["enable_cfs"], bool):
        raise bad(f"{data['enable_cfs']!r} is not of type 'boolean'")
    out = {k: v for k, v in data.items() if k not in ("name", "tenant", "links", "boot_sets")}
    out["boot_sets"] = out_sets
    out["name"] = name
    out["tenant"] = tenant() or None
    out["links"] = [{"href": f"/v2/sessiontemplates/{name}", "rel": "self"}]
    return out


def _tkey(name: str, tenant_name: str | None = None) -> str:
    return f"{tenant() if tenant_name is None else tenant_name}/{name}"


def _visible(doc: dict) -> bool:
    return not tenant() or (doc.get("tenant") or "") == tenant()


@bp.get("/v2/sessiontemplates")
def templates_get():
    return reply([t for t in lab().store.doc_list("bos.template") if _visible(t)])


@bp.get("/v2/sessiontemplates/<name>")
def template_get(name: str):
    t = lab().store.doc_get("bos.template", _tkey(name))
    if t is None:
        raise not_found(f"Session template '{name}' does not exist")
    return reply(t)


@bp.put("/v2/sessiontemplates/<name>")
def template_put(name: str):
    stored = validate_template(name, json_body(_json_error))
    lab().store.doc_put("bos.template", _tkey(name), stored)
    return reply(stored, 200)


@bp.patch("/v2/sessiontemplates/<name>")
def template_patch(name: str):
    current = lab().store.doc_get("bos.template", _tkey(name))
    if current is None:
        raise not_found(f"Session template '{name}' does not exist")
    patch = json_body(_json_error)
    if not isinstance(patch, dict):
        raise bad("patch must be a JSON object")
    merged = {k: v for k, v in current.items() if k not in ("name", "tenant", "links")}
    for k, v in patch.items():
        if k == "boot_sets" and isinstance(v, dict):
            merged["boot_sets"] = {**merged["boot_sets"], **v}
        else:
            merged[k] = v
    stored = validate_template(name, merged)
    lab().store.doc_put("bos.template", _tkey(name), stored)
    return reply(stored)


@bp.delete("/v2/sessiontemplates/<name>")
def template_delete(name: str):
    if not lab().store.doc_delete("bos.template", _tkey(name)):
        raise not_found(f"Session template '{name}' does not exist")
    return empty(204)


@bp.get("/v2/sessiontemplatesvalid/<name>")
def template_valid(name: str):
    t = lab().store.doc_get("bos.template", _tkey(name))
    if t is None:
        raise not_found(f"Session template '{name}' does not exist")
    runner = lab().bos
    for bs_name, bs in t["boot_sets"].items():
        try:
            boot_artifacts(lab().store, bs["path"], "", "", "", "")
        except SessionError as exc:
            return reply(f"Session template '{name}' boot set '{bs_name}': {exc}")
        if not runner.resolve_nodes(bs, False):
            return reply(f"Session template '{name}' boot set '{bs_name}' has no nodes of arch "
                         f"{bs.get('arch', 'X86')} that are enabled in HSM")
    return reply("Valid")


@bp.get("/v2/sessiontemplatetemplate")
def template_template():
    return reply({"name": "name-your-template", "description": "Template for creating a session template",
                  "enable_cfs": True, "cfs": {"configuration": "desired-cfs-config"},
                  "boot_sets": {"name_your_boot_set": {
                      "kernel_parameters": "console=ttyS0,115200 bad_page=panic crashkernel=340M",
                      "node_roles_groups": ["Compute"], "rootfs_provider_passthrough": "",
                      "rootfs_provider": "", "path": "s3://boot-images/<ims image id>/manifest.json",
                      "etag": "your_boot_image_etag", "type": "s3", "arch": "X86"}}})


# ---------------------------------------------------------------------------- sessions
@bp.post("/v2/sessions")
def sessions_post():
    data = json_body(_json_error)
    if not isinstance(data, dict):
        raise bad("Session must be a JSON object")
    _extra(data, SESSION_KEYS)
    for req in ("operation", "template_name"):
        if req not in data:
            raise bad(f"'{req}' is a required property")
    if data["operation"] not in ("boot", "reboot", "shutdown"):
        raise bad(f"'{data['operation']}' is not one of ['boot', 'reboot', 'shutdown']")
    if data.get("stage"):
        raise bad("the lab does not stage sessions (stage must be false)")
    options = lab().store.kv_get("bos.options", OPTIONS_DEFAULT)
    limit = data.get("limit")
    if options.get("session_limit_required") and limit in (None, ""):
        raise bad("session_limit_required is set: a limit is required")
    name = data.get("name") or str(uuid.uuid4())
    if not NAME.match(name):
        raise bad(f"'{name}' does not match '{NAME.pattern}'")
    if lab().store.doc_get("bos.template", _tkey(data["template_name"])) is None:
        raise bad(f"Session template '{data['template_name']}' does not exist")
    session = {"name": name, "tenant": tenant() or None, "operation": data["operation"],
               "template_name": data["template_name"], "limit": limit if limit is not None else "",
               "stage": False, "components": "", "include_disabled": bool(data.get("include_disabled", False)),
               "status": {"start_time": now_iso(), "end_time": None, "status": "pending", "error": None}}
    if not lab().store.doc_insert("bos.session", _tkey(name), session):
        raise ApiError(409, f"A session with the name {name} already exists",
                       title="The resource to be created already exists")
    lab().bos.start(_tkey(name))
    return reply(session, 201)


def _age_seconds(value: str) -> int:
    m = re.match(r"^(\d+)([smhdw])$", value or "")
    if not m:
        raise bad(f"invalid age '{value}' (use e.g. 30m, 4h, 2d)")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def _sessions_filtered() -> list[dict]:
    q = query()
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    out = []
    for s in lab().store.doc_list("bos.session"):
        if not _visible(s):
            continue
        if q.get("status") and s["status"]["status"] not in q["status"]:
            continue
        age = (now - datetime.datetime.fromisoformat(s["status"]["start_time"])).total_seconds()
        if q.get("min_age") and age < _age_seconds(q["min_age"][0]):
            continue
        if q.get("max_age") and age > _age_seconds(q["max_age"][0]):
            continue
        out.append(s)
    return out


@bp.get("/v2/sessions")
def sessions_get():
    return reply(_sessions_filtered())


@bp.delete("/v2/sessions")
def sessions_delete():
    q = query()
    for s in _sessions_filtered():
        if not q.get("status") and s["status"]["status"] != "complete":
            continue  # by default only completed sessions are removed
        lab().store.doc_delete("bos.session", _tkey(s["name"], s.get("tenant") or ""))
    return empty(204)


@bp.get("/v2/sessions/<name>")
def session_get(name: str):
    s = lab().store.doc_get("bos.session", _tkey(name))
    if s is None:
        raise not_found(f"Session '{name}' does not exist")
    return reply(s)


@bp.delete("/v2/sessions/<name>")
def session_delete(name: str):
    if not lab().store.doc_delete("bos.session", _tkey(name)):
        raise not_found(f"Session '{name}' does not exist")
    return empty(204)


@bp.get("/v2/sessions/<name>/status")
def session_status(name: str):
    s = lab().store.doc_get("bos.session", _tkey(name))
    if s is None:
        raise not_found(f"Session '{name}' does not exist")
    xnames = [x for x in s.get("components", "").split(",") if x]
    comps = [lab().bos.component(x) for x in xnames]
    total = len(comps) or 1
    mine = [c for c in comps if c.get("session") == s["name"]]
    failed = [c for c in mine if c["status"]["status"] == "failed"]
    done = [c for c in mine if not c.get("enabled") and c["status"]["status"] == "stable"]
    errors: dict[str, dict] = {}
    for c in failed:
        e = errors.setdefault(c.get("error") or "failed", {"count": 0, "ids": []})
        e["count"] += 1
        e["ids"].append(c["id"])
    start = datetime.datetime.fromisoformat(s["status"]["start_time"])
    end = datetime.datetime.fromisoformat(s["status"]["end_time"]) if s["status"]["end_time"] else \
        datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    secs = int((end - start).total_seconds())

    def pct(n: int) -> float:
        return round(100.0 * n / total, 2) if comps else 0.0
    return reply({
        "status": s["status"]["status"], "managed_components_count": len([c for c in mine if c.get("enabled")]),
        "phases": {"percent_complete": pct(len(done) + len(failed)),
                   "percent_powering_on": pct(sum(c["status"]["phase"] == "powering_on" for c in mine)),
                   "percent_powering_off": pct(sum(c["status"]["phase"] == "powering_off" for c in mine)),
                   "percent_configuring": pct(sum(c["status"]["phase"] == "configuring" for c in mine))},
        "percent_successful": pct(len(done)), "percent_failed": pct(len(failed)), "percent_staged": 0.0,
        "error_summary": {msg: {"count": e["count"], "list": ",".join(e["ids"][:10]) + (",..." if e["count"] > 10 else "")}
                          for msg, e in errors.items()},
        "timing": {"start_time": s["status"]["start_time"], "end_time": s["status"]["end_time"],
                   "duration": f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}"},
    })


# ---------------------------------------------------------------------------- components
def _node_ids() -> list[str]:
    with lab().store.read() as c:
        return [r[0] for r in c.execute("SELECT id FROM components WHERE type='Node' ORDER BY id")]


@bp.get("/v2/components")
def components_get():
    q = query()
    ids = [i for v in q.get("ids", []) for i in v.split(",") if i] or _node_ids()
    stored = {d["id"]: d for d in lab().store.doc_list("bos.component")}
    out = []
    for x in ids:
        c = stored.get(x) or default_component(x)
        if q.get("session") and c.get("session") != q["session"][0]:
            continue
        if q.get("enabled") and str(c.get("enabled")).lower() != q["enabled"][0].lower():
            continue
        if q.get("phase") and c["status"]["phase"] != q["phase"][0]:
            continue
        if q.get("status") and c["status"]["status"] != q["status"][0]:
            continue
        out.append(c)
    return reply(out)


@bp.get("/v2/components/<xname>")
def component_get(xname: str):
    if xname not in set(_node_ids()) and lab().store.doc_get("bos.component", xname) is None:
        raise not_found(f"Component {xname} could not be found")
    return reply(lab().bos.component(xname))


COMPONENT_PATCH_KEYS = {"enabled", "retry_policy", "error", "desired_state", "staged_state", "status",
                        "actual_state", "last_action", "event_stats", "session", "id"}


@bp.patch("/v2/components/<xname>")
def component_patch(xname: str):
    if xname not in set(_node_ids()) and lab().store.doc_get("bos.component", xname) is None:
        raise not_found(f"Component {xname} could not be found")
    patch = json_body(_json_error)
    if not isinstance(patch, dict):
        raise bad("patch must be a JSON object")
    _extra(patch, COMPONENT_PATCH_KEYS)
    c = lab().bos.component(xname)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(c.get(k), dict):
            c[k].update(v)
        elif k != "id":
            c[k] = v
    lab().store.doc_put("bos.component", xname, c)
    return reply(c)


@bp.patch("/v2/components")
def components_patch():
    data = json_body(_json_error)
    if not isinstance(data, dict) or "patch" not in data or "filters" not in data:
        raise bad("'patch' and 'filters' are required properties")
    _extra(data, {"patch", "filters"})
    patch, filters = data["patch"], data["filters"]
    _extra(patch, COMPONENT_PATCH_KEYS)
    if "ids" in filters:
        ids = [i for i in str(filters["ids"]).split(",") if i]
    elif "session" in filters:
        ids = [d["id"] for d in lab().store.doc_list("bos.component") if d.get("session") == filters["session"]]
    else:
        raise bad("filters need 'ids' or 'session'")
    known = set(_node_ids())
    unknown = [i for i in ids if i not in known]
    if unknown and query().get("skip_bad_ids", ["false"])[0].lower() != "true":
        raise not_found(f"Component(s) {','.join(unknown)} could not be found")
    out = []
    for x in ids:
        if x not in known:
            continue
        c = lab().bos.component(x)
        for k, v in patch.items():
            if isinstance(v, dict) and isinstance(c.get(k), dict):
                c[k].update(v)
            elif k != "id":
                c[k] = v
        lab().store.doc_put("bos.component", x, c)
        out.append(c)
    return reply(out)


# ---------------------------------------------------------------------------- service
@bp.get("/v2/options")
def options_get():
    return reply(lab().store.kv_get("bos.options", OPTIONS_DEFAULT))


@bp.patch("/v2/options")
def options_patch():
    patch = json_body(_json_error)
    if not isinstance(patch, dict) or not patch:
        raise bad("options patch must be a non-empty JSON object")
    opts = dict(lab().store.kv_get("bos.options", OPTIONS_DEFAULT))
    opts.update(patch)
    lab().store.kv_set("bos.options", opts)
    return reply(opts)


@bp.get("/v2/healthz")
def healthz():
    return reply({"dbStatus": "ok", "apiStatus": "ok"})


@bp.get("/v2/version")
@bp.get("/v2")
def version():
    return reply({"major": "2", "minor": "0", "patch": "0",
                  "links": [{"href": "/v2", "rel": "self"}]})


@bp.get("/")
def root():
    return reply([{"major": "2", "minor": "0", "patch": "0", "links": [{"href": "/v2", "rel": "versions"}]}])
