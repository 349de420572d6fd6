"""Check the lab's replies against the real services' OpenAPI files.

Swagger 2.0 files (SMD, BSS, cloud-init) are not supported by openapi-core, so their
response schemas are checked with jsonschema against the file's ``definitions`` (``$ref``
resolved in place). OpenAPI 3 files (PCS, BOS, IMS) go through openapi-core with the
real request and response.

Both are *strict*: an object schema that lists its properties and says nothing about
others gets ``additionalProperties: false``, so a field the lab invents or misspells
fails (objects composed with ``allOf`` are left open, since strictness there would
reject every composition).

Where the running services disagree with their own spec (research-openchami §10,
research-csm §11), the spec is patched by an entry of ``EXCEPTIONS`` below, one per
documented difference, each checked to still apply (``apply`` fails if the spec no
longer says what the entry expects, so a fixed spec cannot hide behind a stale patch).
"""
from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jsonschema
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

SPECS = Path(__file__).resolve().parents[2] / "lab" / "specs"


# ---------------------------------------------------------------------------- loading
class Yaml12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.2 booleans: only true/false. PyYAML's 1.1 rules turn the PCS spec's enum
    values ``on``/``off``/``On``/``Off`` into booleans, which the spec does not mean."""


Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _str_keys(obj: Any) -> Any:
    """Response codes written as YAML integers (``200:``) become the strings OpenAPI requires."""
    if isinstance(obj, dict):
        return {str(k): _str_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_str_keys(v) for v in obj]
    return obj


@functools.lru_cache(maxsize=None)
def _load_cached(name: str) -> dict:
    return _str_keys(yaml.load((SPECS / name).read_text(), Loader=Yaml12Loader))


def load(name: str) -> dict:
    """A fresh copy of a spec file (parsed once per test run)."""
    return copy.deepcopy(_load_cached(name))


# ---------------------------------------------------------------------------- exceptions
@dataclass(frozen=True)
class Exception_:
    spec: str  # file under specs/
    where: str  # what is patched, for the reader
    why: str  # the documented difference (research notes)
    expect: Callable[[dict], bool]  # the spec still says what we patch away
    patch: Callable[[dict], None]


def _defs(doc: dict) -> dict:
    return doc["definitions"] if "definitions" in doc else doc["components"]["schemas"]


def _smd_exceptions(spec: str) -> list[Exception_]:
    return [
        Exception_(spec, "definitions/ResourceURI.1.0.0",
                   "SMD marshals ResourceURI{URI string `json:\"URI\"`}: the key is URI, not ResourceURI "
                   "(research-openchami §10, research-csm §11.1)",
                   lambda d: "ResourceURI" in _defs(d)["ResourceURI.1.0.0"]["properties"],
                   lambda d: _defs(d)["ResourceURI.1.0.0"].update(
                       properties={"URI": {"type": "string"}}, required=["URI"])),
        Exception_(spec, "definitions/Response_1.0.0.code",
                   "SMD's simple reply {\"code\":0,...} carries an integer code; the spec says string "
                   "(research-openchami §2.2, §10)",
                   lambda d: _defs(d)["Response_1.0.0"]["properties"]["code"]["type"] == "string",
                   lambda d: _defs(d)["Response_1.0.0"]["properties"]["code"].update(type="integer")),
        Exception_(spec, "definitions/ResourceName.pattern",
                   "labels are lower-cased and checked with ^[-a-z0-9:._]+$ (pkg/sm/groups.go); the spec's "
                   "^[0-9a-f_\\-.]{1,}$ would reject 'compute' (research-csm §11.2)",
                   lambda d: _defs(d)["ResourceName"]["pattern"] == r"^[0-9a-f_\-.]{1,}$",
                   lambda d: _defs(d)["ResourceName"].update(pattern=r"^[-a-z0-9:._]+$")),
    ]


def _bss_exceptions(spec: str) -> list[Exception_]:
    def nullable(d: dict) -> None:
        props = _defs(d)["CloudInit"]["properties"]
        for key in ("meta-data", "user-data"):
            props[key] = {"anyOf": [props[key], {"type": "null"}]}
    return [
        Exception_(spec, "definitions/CloudInit meta-data, user-data",
                   "BSS always emits the cloud-init block and, with nothing stored, meta-data and "
                   "user-data are null (research-openchami §3.1; the tutorial shows it); Swagger 2.0 "
                   "cannot say nullable",
                   lambda d: "type" not in _defs(d)["CloudInit"]["properties"]["meta-data"],
                   nullable),
    ]


def _cloud_init_exceptions() -> list[Exception_]:
    spec = "openchami/cloud-init-swagger.yaml"

    def groups_map(d: dict) -> None:
        d["paths"]["/admin/groups"]["get"]["responses"]["200"]["schema"]["additionalProperties"] = {
            "$ref": "#/definitions/cistore.GroupData"}

    def metadata(d: dict) -> None:
        defs = _defs(d)
        v1 = defs["main.InstanceData"]["properties"]["v1"]
        renamed = {k.replace("-", "_"): v for k, v in v1["properties"].items()}
        v1["properties"] = renamed
        defs["main.InstanceData"]["properties"] = {"v1": v1}
        md = defs["main.MetaData"]["properties"]
        md["instance_data"] = md.pop("instance-data")
        vd = defs["main.VendorData"]["properties"]
        defs["main.VendorData"]["properties"] = {k.replace("-", "_"): v for k, v in vd.items()}
    return [
        Exception_(spec, "paths/admin/groups GET 200",
                   "GET /admin/groups answers a map of GroupData; the spec says a map of ClusterDefaults "
                   "(research-openchami §10)",
                   lambda d: d["paths"]["/admin/groups"]["get"]["responses"]["200"]["schema"]
                   ["additionalProperties"]["$ref"].endswith("ClusterDefaults"),
                   groups_map),
        Exception_(spec, "definitions/main.MetaData, InstanceData, VendorData",
                   "metadata.go writes instance_data.v1.{cloud_name,...,vendor_data{cloud_init_base_url,"
                   "sub_role,...}} with underscores (cloud-config templates read "
                   "ds.meta_data.instance_data.v1...); the swagger's keys are hyphenated "
                   "(research-openchami §4)",
                   lambda d: "instance-data" in _defs(d)["main.MetaData"]["properties"],
                   metadata),
    ]


def _pcs_exceptions(spec: str) -> list[Exception_]:
    def problem(d: dict) -> None:
        p = _defs(d)["Problem7807"]["properties"]
        p["status"] = p.pop("statusCode")
        for path in d["paths"].values():
            for op in path.values():
                for resp in (op.get("responses") or {}).values() if isinstance(op, dict) else []:
                    content = resp.get("content") if isinstance(resp, dict) else None
                    if content and "application/error" in content:
                        content["application/problem+json"] = content.pop("application/error")

    def get_404(d: dict) -> None:
        d["paths"]["/transitions/{transitionID}"]["get"]["responses"]["404"] = {
            "description": "TransitionID does not exist",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem7807"}}}}

    def last_updated(d: dict) -> None:
        props = _defs(d)["power_status"]["properties"]
        props["lastUpdated"] = {"anyOf": [props["lastUpdated"], {"type": "string", "enum": [""]}]}
    return [
        Exception_(spec, "components/schemas/power_status.lastUpdated",
                   "for a component PCS cannot find, the item carries error 'Component not found in "
                   "component map.' and lastUpdated \"\" (research-openchami §5); the spec says date-time",
                   lambda d: _defs(d)["power_status"]["properties"]["lastUpdated"].get("format") == "date-time",
                   last_updated),
        Exception_(spec, "paths/transitions/{transitionID} GET 404",
                   "an unknown transition ID is answered 404 'TransitionID does not exist' (research-openchami "
                   "§5); the spec lists only 200, 400 and 500 for GET (it has the 404 for DELETE)",
                   lambda d: "404" not in d["paths"]["/transitions/{transitionID}"]["get"]["responses"],
                   get_404),
        Exception_(spec, "components/schemas/Problem7807 and error media types",
                   "PCS errors are RFC 7807 with 'status' and Content-Type application/problem+json; the "
                   "spec says 'statusCode' and application/error (research-openchami §10)",
                   lambda d: "statusCode" in _defs(d)["Problem7807"]["properties"],
                   problem),
    ]


def _ims_exceptions() -> list[Exception_]:
    spec = "csm/ims_openapi.yaml"

    def dedupe(d: dict) -> None:
        for path in [p for p, item in d["paths"].items() if set(item) == {"$ref"}]:
            del d["paths"][path]  # unversioned aliases of /v2 (the lab serves only /v3)
        seen: set[str] = set()
        for path, item in d["paths"].items():
            for method, op in item.items():
                if isinstance(op, dict) and "operationId" in op:
                    if op["operationId"] in seen:
                        op["operationId"] += "_" + path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
                    seen.add(op["operationId"])

    def dup_ids(d: dict) -> bool:
        ids = [op["operationId"] for item in d["paths"].values() for op in item.values()
               if isinstance(op, dict) and "operationId" in op]
        return len(ids) != len(set(ids)) and any(set(item) == {"$ref"} for item in d["paths"].values())
    return [
        Exception_(spec, "paths: duplicate operationIds",
                   "the spec document itself is invalid OpenAPI: get_all_v3_remote_build_status is used "
                   "twice and the unversioned paths are $ref aliases of /v2 (same operationIds); the "
                   "aliases are dropped (the lab serves /v3 only) and the duplicate renamed, which "
                   "changes nothing about any /v3 reply",
                   dup_ids, dedupe),
        Exception_(spec, "components/responses (errors) media type",
                   "IMS errors come from httpproblem.problem_http_response (ims.utils.errors.problemify), "
                   "whose Content-Type is application/problem+json; the spec documents application/json",
                   lambda d: all("application/json" in r.get("content", {})
                                 for r in d["components"]["responses"].values()),
                   lambda d: [r["content"].update({"application/problem+json": r["content"].pop("application/json")})
                              for r in d["components"]["responses"].values()]),
        Exception_(spec, "components/schemas/JobStatuses",
                   "the IMS server also reports 'packaging_artifacts' (src/server/models/jobs.py), which "
                   "the spec's enum lacks (research-csm §4, §11.8)",
                   lambda d: "packaging_artifacts" not in _defs(d)["JobStatuses"]["enum"],
                   lambda d: _defs(d)["JobStatuses"]["enum"].append("packaging_artifacts")),
        Exception_(spec, "components/schemas/JobRecord.resultant_image_id",
                   "a job that has not finished reports resultant_image_id null (marshmallow "
                   "allow_none; research-csm §4 example); the spec does not say nullable",
                   lambda d: not _defs(d)["JobRecord"]["properties"]["resultant_image_id"].get("nullable"),
                   lambda d: _defs(d)["JobRecord"]["properties"]["resultant_image_id"].update(nullable=True)),
    ]


EXCEPTIONS: list[Exception_] = (
    _smd_exceptions("openchami/smd-swagger_v2.yaml") + _smd_exceptions("csm/hms-smd_swagger_v2.yaml")
    + _bss_exceptions("openchami/bss-swagger.yaml") + _bss_exceptions("csm/hms-bss_swagger.yaml")
    + _cloud_init_exceptions()
    + _pcs_exceptions("openchami/power-control-swagger.yaml") + _pcs_exceptions("csm/hms-power-control_swagger.yaml")
    + _ims_exceptions()
)


def apply(spec: str, doc: dict) -> dict:
    for exc in EXCEPTIONS:
        if exc.spec == spec:
            assert exc.expect(doc), f"{spec}: exception '{exc.where}' no longer matches the spec ({exc.why})"
            exc.patch(doc)
    return doc


# ---------------------------------------------------------------------------- strictness
def _allof_targets(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, []) or []:
                if isinstance(sub, dict) and "$ref" in sub:
                    out.add(sub["$ref"].rsplit("/", 1)[-1])
        for v in node.values():
            _allof_targets(v, out)
    elif isinstance(node, list):
        for v in node:
            _allof_targets(v, out)
    return out


def _strict(node: Any, in_composition: bool = False) -> None:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node and not in_composition:
            node["additionalProperties"] = False
        for key, v in node.items():
            _strict(v, in_composition or key in ("allOf", "anyOf", "oneOf"))
    elif isinstance(node, list):
        for v in node:
            _strict(v, in_composition)


def make_strict(doc: dict) -> dict:
    defs = _defs(doc)
    open_defs = _allof_targets(doc, set())
    for name, schema in defs.items():
        if name not in open_defs:
            _strict(schema)
    for item in doc.get("paths", {}).values():
        _strict(item)
    return doc


# ---------------------------------------------------------------------------- validators
@functools.lru_cache(maxsize=None)
def swagger2(spec: str) -> "Swagger2":
    return Swagger2(spec)


class Swagger2:
    """Response bodies of a Swagger 2.0 file, by path template (without basePath), method and status."""

    def __init__(self, spec: str):
        self.spec = spec
        self.doc = make_strict(apply(spec, load(spec)))

    def schema(self, path: str, method: str, status: int) -> dict | None:
        op = self.doc["paths"][path][method.lower()]
        resp = op["responses"].get(str(status)) or op["responses"].get("default")
        assert resp is not None, f"{self.spec}: {method} {path} documents no {status} reply"
        return resp.get("schema")

    def validate(self, path: str, method: str, status: int, body: Any) -> None:
        schema = self.schema(path, method, status)
        assert schema is not None or body in (None, b"", ""), \
            f"{self.spec}: {method} {path} {status} documents no body, got {body!r}"
        if schema is None:
            return
        full = dict(copy.deepcopy(schema), definitions=self.doc["definitions"])
        jsonschema.Draft4Validator(full).validate(body)


class OpenAPI3:
    """Real requests/responses against an OpenAPI 3 file (openapi-core), served under ``base``."""

    def __init__(self, spec: str, base: str):
        doc = make_strict(apply(spec, load(spec)))
        doc["servers"] = [{"url": base}] + list(doc.get("servers") or [])
        self.spec = spec
        # RFC 7807 bodies are JSON; openapi-core only knows application/json by default.
        self.api = OpenAPI.from_dict(doc, config=Config(
            extra_media_type_deserializers={"application/problem+json": lambda data, **_: json.loads(data)}))

    def validate(self, resp) -> None:
        self.api.validate_response(RequestsOpenAPIRequest(resp.request), RequestsOpenAPIResponse(resp))
