"""IMS v3 under ``/apis/ims``: recipes, images, public keys, jobs, soft deletion.

A *create* job whose recipe carries lab content really builds: a worker thread moves the
job creating -> fetching_recipe -> building_image -> packaging_artifacts -> success (or
error), calls ``driver.build_image(recipe, name, tag, builder)`` and records the result
as an IMS image whose ``link`` is ``s3://boot-images/<id>/manifest.json`` and whose
``metadata`` carries the provenance (``vclab.*`` keys).

Where a recipe's content comes from (IMS itself stores a kiwi/packer tarball in S3,
which the lab has not): an image-builder style document (``options.parent``,
``options.name``, ``options.publish_tags``, ``packages``, ``cmds``), either uploaded with
the lab-only ``PUT /apis/ims/lab/recipes/{id}/content`` (YAML or JSON body) or carried in
the recipe's ``template_dictionary`` under the key ``vclab.recipe`` (a JSON string). The
uploaded content wins when both exist. ``GET /apis/ims/lab/jobs/{id}/log`` shows what a
job did (IMS keeps that in Kubernetes pod logs).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import yaml
from flask import Blueprint, g, request

from ..nodes.base import DriverError
from .common import ApiError, check_gateway_auth, empty, json_body, lab, query, reply

log = logging.getLogger("vcluster_lab.ims")
bp = Blueprint("ims_csm", __name__)
ARCHES = ("aarch64", "x86_64")
RECIPE_TYPES = ("kiwi-ng", "packer")
DISTRIBUTIONS = ("sles12", "sles15", "centos7")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def invalid(detail: str, errors: dict | None = None) -> ApiError:
    return ApiError(422, detail, title="Unprocessable Entity")


def not_found(kind: str, oid: str) -> ApiError:
    return ApiError(404, f"{kind} record {oid} does not exist", title="Not Found")


def _no_input(msg: str) -> ApiError:
    return ApiError(400, "No input provided. Determine the specific information that is missing or invalid "
                         f"and then re-run the request with valid information. ({msg})", title="Bad Request")


def body() -> dict:
    data = json_body(_no_input)
    if not isinstance(data, dict):
        raise _no_input("body must be a JSON object")
    return data


@bp.before_request
def _auth():
    return check_gateway_auth()


def _link(raw: object) -> dict | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw.get("path") or not raw.get("type"):
        raise invalid("link needs 'path' and 'type'")
    return {"path": str(raw["path"]), "etag": str(raw.get("etag", "")), "type": str(raw["type"])}


def _arch(raw: object, default: str = "x86_64") -> str:
    arch = raw or default
    if arch not in ARCHES:
        raise invalid(f"arch must be one of {list(ARCHES)}")
    return arch


# ---------------------------------------------------------------------------- generic
def _list(kind: str):
    return reply(lab().store.doc_list(kind))


def _get(kind: str, label: str, oid: str):
    doc = lab().store.doc_get(kind, oid)
    if doc is None:
        raise not_found(label, oid)
    return doc


def _soft_delete(kind: str, label: str, oid: str):
    doc = _get(kind, label, oid)
    doc["deleted"] = now()
    lab().store.doc_move(kind, oid, "deleted." + kind, doc)


def _delete_all(kind: str, label: str):
    for oid in lab().store.doc_ids(kind):
        _soft_delete(kind, label, oid)
    return empty(204)


def _patch_link_arch(rec: dict, data: dict, what: str) -> None:
    """PATCH of ``link`` (once only: IMS refuses to re-link an artifact) and ``arch``."""
    if "link" in data:
        if rec.get("link") and rec["link"].get("path"):
            raise ApiError(409, f"The IMS {what} record has already been associated with an artifact link",
                           title="Conflict")
        rec["link"] = _link(data["link"])
    if "arch" in data:
        rec["arch"] = _arch(data["arch"])


def _template_dictionary(pairs: list) -> list[dict]:
    return [{"key": str(p["key"]), "value": str(p["value"])} for p in pairs or []]


# ---------------------------------------------------------------------------- recipes
@bp.get("/v3/recipes")
def recipes_get():
    return _list("ims.recipe")


@bp.post("/v3/recipes")
def recipes_post():
    data = body()
    for req in ("name", "recipe_type", "linux_distribution"):
        if not data.get(req):
            raise invalid(f"'{req}' is required")
    if data["recipe_type"] not in RECIPE_TYPES:
        raise invalid(f"recipe_type must be one of {list(RECIPE_TYPES)}")
    if data["linux_distribution"] not in DISTRIBUTIONS:
        raise invalid(f"linux_distribution must be one of {list(DISTRIBUTIONS)}")
    td = data.get("template_dictionary") or []
    if not isinstance(td, list) or not all(isinstance(p, dict) and "key" in p and "value" in p for p in td):
        raise invalid("template_dictionary must be a list of {key, value}")
    rid = str(uuid.uuid4())
    rec = {"id": rid, "created": now(), "name": str(data["name"]), "recipe_type": data["recipe_type"],
           "linux_distribution": data["linux_distribution"], "arch": _arch(data.get("arch")),
           "require_dkms": bool(data.get("require_dkms", False)),
           "template_dictionary": _template_dictionary(td)}
    link = _link(data.get("link"))
    if link:
        rec["link"] = link
    lab().store.doc_put("ims.recipe", rid, rec)
    return reply(rec, 201)


@bp.delete("/v3/recipes")
def recipes_delete_all():
    return _delete_all("ims.recipe", "Recipe")


@bp.get("/v3/recipes/<rid>")
def recipe_get(rid: str):
    return reply(_get("ims.recipe", "Recipe", rid))


@bp.patch("/v3/recipes/<rid>")
def recipe_patch(rid: str):
    rec = _get("ims.recipe", "Recipe", rid)
    data = body()
    _patch_link_arch(rec, data, "recipe")
    if "require_dkms" in data:
        rec["require_dkms"] = bool(data["require_dkms"])
    if "template_dictionary" in data:
        rec["template_dictionary"] = _template_dictionary(data["template_dictionary"])
    lab().store.doc_put("ims.recipe", rid, rec)
    return reply(rec)


@bp.delete("/v3/recipes/<rid>")
def recipe_delete(rid: str):
    _soft_delete("ims.recipe", "Recipe", rid)
    return empty(204)


# ---------------------------------------------------------------------------- lab recipe content
def parse_recipe_content(raw: bytes) -> dict:
    try:
        content = yaml.safe_load(raw.decode())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise invalid(f"recipe content is neither YAML nor JSON: {exc}") from None
    if not isinstance(content, dict) or not isinstance(content.get("options"), dict):
        raise invalid("recipe content must be an image-builder config with an 'options' mapping")
    for key in ("packages", "cmds"):
        if key in content and not isinstance(content[key], list):
            raise invalid(f"recipe content '{key}' must be a list")
    return content


def recipe_sha(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@bp.put("/lab/recipes/<rid>/content")
def recipe_content_put(rid: str):
    rec = _get("ims.recipe", "Recipe", rid)
    content = parse_recipe_content(request.get_data())
    sha = recipe_sha(content)
    lab().store.doc_put("ims.recipe_content", rid, content)
    if not rec.get("link"):
        rec["link"] = {"path": f"s3://ims/recipes/{rid}/recipe.tar.gz", "etag": sha[:32], "type": "s3"}
        lab().store.doc_put("ims.recipe", rid, rec)
    return reply({"id": rid, "sha256": sha, "content": content})


@bp.get("/lab/recipes/<rid>/content")
def recipe_content_get(rid: str):
    _get("ims.recipe", "Recipe", rid)
    content = lab().store.doc_get("ims.recipe_content", rid)
    if content is None:
        raise ApiError(404, f"Recipe {rid} has no lab content", title="Not Found")
    return reply({"id": rid, "sha256": recipe_sha(content), "content": content})


def recipe_content(store, rid: str) -> dict:
    """The image-builder content of a recipe: uploaded content, else template_dictionary 'vclab.recipe'."""
    content = store.doc_get("ims.recipe_content", rid)
    if content is not None:
        return content
    rec = store.doc_get("ims.recipe", rid) or {}
    for pair in rec.get("template_dictionary") or []:
        if pair.get("key") == "vclab.recipe":
            try:
                return parse_recipe_content(pair["value"].encode())
            except ApiError as exc:
                raise ValueError(exc.detail) from None
    raise ValueError(f"recipe {rid} has no lab content: PUT /apis/ims/lab/recipes/{rid}/content or set "
                     "template_dictionary key 'vclab.recipe'")


# ---------------------------------------------------------------------------- images
@bp.get("/v3/images")
def images_get():
    return _list("ims.image")


@bp.post("/v3/images")
def images_post():
    data = body()
    if not data.get("name"):
        raise invalid("'name' is required")
    iid = str(uuid.uuid4())
    rec = {"id": iid, "created": now(), "name": str(data["name"]), "arch": _arch(data.get("arch"))}
    link = _link(data.get("link"))
    if link:
        rec["link"] = link
    meta = data.get("metadata")
    if isinstance(meta, dict) and meta:
        if set(meta) == {"key", "value"}:
            rec["metadata"] = {str(meta["key"]): str(meta["value"])}
        else:
            rec["metadata"] = {str(k): str(v) for k, v in meta.items()}
    lab().store.doc_put("ims.image", iid, rec)
    return reply(rec, 201)


@bp.delete("/v3/images")
def images_delete_all():
    return _delete_all("ims.image", "Image")


@bp.get("/v3/images/<iid>")
def image_get(iid: str):
    return reply(_get("ims.image", "Image", iid))


@bp.patch("/v3/images/<iid>")
def image_patch(iid: str):
    rec = _get("ims.image", "Image", iid)
    data = body()
    _patch_link_arch(rec, data, "image")
    if "metadata" in data:
        m = data["metadata"] or {}
        if m.get("operation") not in ("set", "remove") or not m.get("key"):
            raise invalid("metadata patch needs operation set|remove and a key")
        meta = rec.setdefault("metadata", {})
        if m["operation"] == "set":
            meta[str(m["key"])] = str(m.get("value", ""))
        else:
            meta.pop(str(m["key"]), None)
    lab().store.doc_put("ims.image", iid, rec)
    return reply(rec)


@bp.delete("/v3/images/<iid>")
def image_delete(iid: str):
    rec = _get("ims.image", "Image", iid)
    if rec.get("link", {}).get("path", "").endswith("/manifest.json"):
        # IMS renames the S3 manifest to deleted/<id>/manifest.json on soft delete
        rec["link"] = dict(rec["link"], path=rec["link"]["path"].replace("s3://boot-images/",
                                                                         "s3://boot-images/deleted/", 1))
        lab().store.doc_put("ims.image", iid, rec)
    _soft_delete("ims.image", "Image", iid)
    return empty(204)


def _deleted_routes(kind: str, label: str, url: str) -> None:
    dkind = "deleted." + kind

    def list_():
        return _list(dkind)

    def get_(oid):
        return reply(_get(dkind, label, oid))

    def delete_(oid):
        _get(dkind, label, oid)
        lab().store.doc_delete(dkind, oid)
        return empty(204)

    def delete_all():
        for oid in lab().store.doc_ids(dkind):
            lab().store.doc_delete(dkind, oid)
        return empty(204)

    def undelete(oid):
        doc = _get(dkind, label, oid)
        data = body()
        if data.get("operation") != "undelete":
            raise invalid("operation must be 'undelete'")
        doc.pop("deleted", None)
        if "link" in doc and "s3://boot-images/deleted/" in doc["link"].get("path", ""):
            doc["link"]["path"] = doc["link"]["path"].replace("s3://boot-images/deleted/", "s3://boot-images/", 1)
        lab().store.doc_move(dkind, oid, kind, doc)
        return empty(204)

    def undelete_all():
        data = body()
        if data.get("operation") != "undelete":
            raise invalid("operation must be 'undelete'")
        for oid in lab().store.doc_ids(dkind):
            doc = lab().store.doc_get(dkind, oid)
            doc.pop("deleted", None)
            lab().store.doc_move(dkind, oid, kind, doc)
        return empty(204)

    name = "deleted_" + url.replace("-", "_")
    bp.add_url_rule(f"/v3/deleted/{url}", f"{name}_list", list_, methods=["GET"])
    bp.add_url_rule(f"/v3/deleted/{url}", f"{name}_delete_all", delete_all, methods=["DELETE"])
    bp.add_url_rule(f"/v3/deleted/{url}", f"{name}_undelete_all", undelete_all, methods=["PATCH"])
    bp.add_url_rule(f"/v3/deleted/{url}/<oid>", f"{name}_get", get_, methods=["GET"])
    bp.add_url_rule(f"/v3/deleted/{url}/<oid>", f"{name}_delete", delete_, methods=["DELETE"])
    bp.add_url_rule(f"/v3/deleted/{url}/<oid>", f"{name}_undelete", undelete, methods=["PATCH"])


_deleted_routes("ims.image", "Deleted image", "images")
_deleted_routes("ims.recipe", "Deleted recipe", "recipes")
_deleted_routes("ims.public_key", "Deleted public key", "public-keys")


# ---------------------------------------------------------------------------- public keys
@bp.get("/v3/public-keys")
def keys_get():
    return _list("ims.public_key")


@bp.post("/v3/public-keys")
def keys_post():
    data = body()
    if not data.get("name") or not data.get("public_key"):
        raise invalid("'name' and 'public_key' are required")
    kid = str(uuid.uuid4())
    rec = {"id": kid, "created": now(), "name": str(data["name"]), "public_key": str(data["public_key"])}
    lab().store.doc_put("ims.public_key", kid, rec)
    return reply(rec, 201)


@bp.get("/v3/public-keys/<kid>")
def key_get(kid: str):
    return reply(_get("ims.public_key", "Public key", kid))


@bp.delete("/v3/public-keys/<kid>")
def key_delete(kid: str):
    _soft_delete("ims.public_key", "Public key", kid)
    return empty(204)


@bp.delete("/v3/public-keys")
def keys_delete_all():
    for kid in lab().store.doc_ids("ims.public_key"):
        _soft_delete("ims.public_key", "Public key", kid)
    return empty(204)


# ---------------------------------------------------------------------------- jobs
@bp.get("/v3/jobs")
def jobs_get():
    return _list("ims.job")


@bp.post("/v3/jobs")
def jobs_post():
    data = body()
    for req in ("job_type", "artifact_id", "public_key_id", "image_root_archive_name"):
        if not data.get(req):
            raise invalid(f"'{req}' is required")
    if data["job_type"] not in ("create", "customize"):
        raise invalid("job_type must be create or customize")
    kind = "ims.recipe" if data["job_type"] == "create" else "ims.image"
    artifact = lab().store.doc_get(kind, str(data["artifact_id"]))
    if artifact is None:
        raise ApiError(400, f"No {'recipe' if kind == 'ims.recipe' else 'image'} with id {data['artifact_id']} exists",
                       title="Bad Request")
    if lab().store.doc_get("ims.public_key", str(data["public_key_id"])) is None:
        raise ApiError(400, f"No public key with id {data['public_key_id']} exists", title="Bad Request")
    jid = str(uuid.uuid4())
    job = {"id": jid, "created": now(), "job_type": data["job_type"],
           "image_root_archive_name": str(data["image_root_archive_name"]),
           "kernel_file_name": str(data.get("kernel_file_name") or "vmlinuz"),
           "initrd_file_name": str(data.get("initrd_file_name") or "initrd"),
           "kernel_parameters_file_name": str(data.get("kernel_parameters_file_name") or "kernel-parameters"),
           "status": "creating", "artifact_id": str(data["artifact_id"]),
           "public_key_id": str(data["public_key_id"]),
           "kubernetes_job": f"cray-ims-{jid}-{data['job_type']}",
           "kubernetes_service": f"cray-ims-{jid}-service", "kubernetes_configmap": f"cray-ims-{jid}-configmap",
           "ssh_containers": [], "enable_debug": bool(data.get("enable_debug", False)),
           "resultant_image_id": None, "build_env_size": int(data.get("build_env_size") or 15),
           "kubernetes_namespace": "ims", "arch": artifact.get("arch", "x86_64"),
           "require_dkms": bool(data.get("require_dkms", artifact.get("require_dkms", False)))}
    lab().store.doc_put("ims.job", jid, job)
    claims = getattr(g, "claims", {}) or {}
    lab().ims.start(jid, claims.get("preferred_username") or claims.get("sub") or "unknown")
    return reply(job, 201)


@bp.get("/v3/jobs/<jid>")
def job_get(jid: str):
    return reply(_get("ims.job", "Job", jid))


@bp.patch("/v3/jobs/<jid>")
def job_patch(jid: str):
    job = _get("ims.job", "Job", jid)
    data = body()
    if "status" in data:
        job["status"] = str(data["status"])
    lab().store.doc_put("ims.job", jid, job)
    return reply(job)


@bp.delete("/v3/jobs/<jid>")
def job_delete(jid: str):
    _get("ims.job", "Job", jid)
    lab().store.doc_delete("ims.job", jid)
    return empty(204)


@bp.delete("/v3/jobs")
def jobs_delete():
    q = query()
    for job in lab().store.doc_list("ims.job"):
        if q.get("status") and job["status"] not in q["status"]:
            continue
        if q.get("job_type") and job["job_type"] not in q["job_type"]:
            continue
        lab().store.doc_delete("ims.job", job["id"])
    return empty(204)


@bp.get("/lab/jobs/<jid>/log")
def job_log(jid: str):
    _get("ims.job", "Job", jid)
    lines = lab().store.doc_get("ims.job_log", jid) or []
    return reply({"id": jid, "log": lines})


# ---------------------------------------------------------------------------- the builder
def podman_name(name: str) -> str:
    clean = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip(".-_")
    return clean or "ims-image"


class JobRunner:
    """Runs IMS create jobs in worker threads through the node driver's build_image."""

    def __init__(self, lab_obj):
        self.lab = lab_obj
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="ims-job")
        self._lock = threading.Lock()

    def start(self, jid: str, builder: str) -> None:
        self.pool.submit(self._run_safely, jid, builder)

    def resume(self) -> None:
        for job in self.lab.store.doc_list("ims.job"):
            if job["status"] not in ("success", "error"):
                self.start(job["id"], "resumed")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _log(self, jid: str, line: str) -> None:
        with self._lock:
            lines = self.lab.store.doc_get("ims.job_log", jid) or []
            lines.append(f"{now()} {line}")
            self.lab.store.doc_put("ims.job_log", jid, lines)

    def _status(self, jid: str, status: str, **extra) -> dict:
        with self._lock:
            job = self.lab.store.doc_get("ims.job", jid)
            job["status"] = status
            job.update(extra)
            self.lab.store.doc_put("ims.job", jid, job)
        self._log(jid, f"status {status}")
        return job

    def _run_safely(self, jid: str, builder: str) -> None:
        try:
            self._run(jid, builder)
        except (ValueError, DriverError) as exc:
            self._log(jid, f"error: {exc}")
            self._status(jid, "error")
        except Exception as exc:
            log.exception("IMS job %s crashed", jid)
            self._log(jid, f"internal error: {exc}")
            self._status(jid, "error")

    def _run(self, jid: str, builder: str) -> None:
        job = self.lab.store.doc_get("ims.job", jid)
        if job is None:
            return
        if job["job_type"] != "create":
            raise ValueError("customize jobs need an SSH build environment, which the lab does not provide")
        self._status(jid, "fetching_recipe")
        recipe = self.lab.store.doc_get("ims.recipe", job["artifact_id"])
        if recipe is None:
            raise ValueError(f"recipe {job['artifact_id']} no longer exists")
        content = recipe_content(self.lab.store, job["artifact_id"])
        sha = recipe_sha(content)
        opts = content.get("options") or {}
        tags = opts.get("publish_tags") or []
        tags = [tags] if isinstance(tags, str) else list(tags)
        name = podman_name(job["image_root_archive_name"])
        tag = f"{tags[0] if tags else 'ims'}-{jid[:8]}"
        self._status(jid, "building_image")
        who = f"{builder} (IMS job {jid})"
        self._log(jid, f"building localhost/{name}:{tag} from recipe {recipe['id']} (sha256 {sha})")
        built = self.lab.driver.build_image(content, name, tag, who)
        self._status(jid, "packaging_artifacts")
        iid = str(uuid.uuid4())
        labels = built.labels or {}
        metadata = {
            "vclab.recipe_id": recipe["id"], "vclab.recipe_name": recipe["name"], "vclab.recipe_sha256": sha,
            "vclab.parent": str(opts.get("parent", "scratch")),
            "vclab.parent_digest": str(labels.get("io.vcluster.image.parent-digest", "")),
            "vclab.podman_ref": built.ref, "vclab.digest": built.digest, "vclab.builder": who,
            "vclab.build_time": str(labels.get("org.openchami.image.build-date") or now()),
            "vclab.job_id": jid,
        }
        image = {"id": iid, "created": now(), "name": job["image_root_archive_name"],
                 "link": {"path": f"s3://boot-images/{iid}/manifest.json",
                          "etag": built.digest.split(":")[-1][:32], "type": "s3"},
                 "arch": job.get("arch", "x86_64"), "metadata": metadata}
        self.lab.store.doc_put("ims.image", iid, image)
        self._log(jid, f"image {iid} -> {built.ref} ({built.digest})")
        self._status(jid, "success", resultant_image_id=iid)
