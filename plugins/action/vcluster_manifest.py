# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a vCluster manifest on the controller, before anything changes.

An action plugin (not a module) because it needs what only the controller has: the
manifest file next to the playbook, and this collection's roles, whose
``meta/vservice.yml`` (version, ordering) and ``meta/argument_specs.yml`` (the vService's
config contract) are the catalogue a manifest is checked against.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import HAS_JSONSCHEMA, ManifestError, validate

COLLECTION_ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_catalog(roles_dir):
    """The collection's vService roles: those whose meta/vservice.yml declares them."""
    catalog = {}
    if not os.path.isdir(roles_dir):
        return catalog
    for name in sorted(os.listdir(roles_dir)):
        meta = os.path.join(roles_dir, name, "meta")
        declaration = os.path.join(meta, "vservice.yml")
        if not os.path.isfile(declaration):
            continue
        with open(declaration) as handle:
            info = yaml.safe_load(handle) or {}
        spec = {}
        specs_file = os.path.join(meta, "argument_specs.yml")
        if os.path.isfile(specs_file):
            with open(specs_file) as handle:
                spec = ((yaml.safe_load(handle) or {}).get("argument_specs", {}).get("main", {}) or {}).get("options", {})
        watch = info.get("watch")
        if watch is not None and not _watch_is_valid(watch):
            raise AnsibleActionFail("%s: watch must be {files: [absolute paths or globs], services: [unit names]}"
                                    % declaration)
        catalog[name] = {"version": str(info.get("version", "")), "after": info.get("after") or [],
                         "description": info.get("description", ""), "argument_spec": spec,
                         "watch": info.get("watch"), "reconfigure": list(info.get("reconfigure") or [])}
    return catalog


def validate_spec(spec, params):
    """Role argument-spec errors for a vService's config, as (variable path, message).

    Unknown settings are reported one by one with what the role takes instead, since a
    misspelt option is the commonest mistake; the other errors keep Ansible's wording.
    """
    result = ArgumentSpecValidator(spec).validate(params)
    out = []
    for item in sorted(result.unsupported_parameters, key=str):
        path = list(item) if isinstance(item, tuple) else [item]
        options = spec
        for part in path[:-1]:
            options = (options.get(part) or {}).get("options") or {}
        out.append((".".join(path), "unknown setting; it takes %s" % ", ".join(
            sorted(k.split("_", 1)[1] if len(path) == 1 and "_" in k else k for k in options))))
    for error in result.errors:
        if type(error).__name__ != "UnsupportedError":
            out.append(("", str(getattr(error, "msg", error))))
    return out


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "manifest"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        path, manifest = args.get("path"), args.get("manifest")
        if bool(path) == (manifest is not None):
            raise AnsibleActionFail("give exactly one of path (a manifest file) or manifest (its content)")
        if not HAS_JSONSCHEMA:
            raise AnsibleActionFail("the Python library 'jsonschema' is required on the controller to validate manifests")
        source, base_dir = "manifest", None
        if path:
            path = self._find_needle("files", path) if not os.path.isabs(path) and not os.path.exists(path) else path
            source, base_dir = path, os.path.dirname(os.path.abspath(path))
            try:
                with open(path) as handle:
                    manifest = yaml.safe_load(handle)
            except (IOError, OSError) as exc:
                raise AnsibleActionFail("cannot read manifest %s: %s" % (path, exc.strerror or exc))
            except yaml.YAMLError as exc:
                raise AnsibleActionFail("manifest %s is not valid YAML: %s" % (path, exc))
        catalog = load_catalog(os.path.join(COLLECTION_ROOT, "roles"))
        try:
            normalized = validate(_plain(manifest), catalog, validate_spec=validate_spec, source=source)
        except ManifestError as exc:
            result.update(failed=True, msg=str(exc), errors=exc.errors)
            return result
        # recipes are relative to the manifest; the node groups' boot images are the same objects
        images = [("image", normalized["image"])] + [
            ("nodes.%s.image" % group, spec["image"]) for group, spec in sorted(normalized["nodes"].items())
            if "image" in spec]
        missing = []
        for field, image in images:
            recipe = image.get("recipe")
            if recipe and base_dir and not os.path.isabs(recipe):
                image["recipe"] = os.path.normpath(os.path.join(base_dir, recipe))
            if recipe and not os.path.isfile(image["recipe"]):
                missing.append("%s.recipe: file %s does not exist" % (field, image["recipe"]))
        if missing:
            result.update(failed=True, msg="%s is invalid:\n  %s" % (source, "\n  ".join(missing)), errors=missing)
            return result
        for vs in normalized["vservices"]:
            external = "source" in vs
            vs["role"] = vs["name"] if external else "hpc.vcluster.%s" % vs["name"]
            # the role's variables: config keys with the role prefix (external roles: as given)
            vs["vars"] = dict(vs["config"]) if external else dict(
                ("%s_%s" % (vs["name"], key), value) for key, value in vs["config"].items())
            # whether the role knows how to stop itself (tasks/destroy.yml), for the destroy playbook
            vs["has_destroy"] = not external and os.path.isfile(
                os.path.join(COLLECTION_ROOT, "roles", vs["name"], "tasks", "destroy.yml"))
            # what tells the lifecycle that a node still runs the vService as applied (meta/vservice.yml watch)
            vs["watch"] = None if external else catalog[vs["name"]].get("watch")
            # the settings its daemons take without a restart (an update that changes only these reconfigures)
            vs["reconfigure"] = [] if external else catalog[vs["name"]].get("reconfigure") or []
        plain = _plain(manifest)
        result.update(changed=False, manifest=normalized, digest=digest(plain), masked=mask(plain, catalog),
                      vservice_order=[v["name"] for v in normalized["vservices"]],
                      catalog=dict((k, {"version": v["version"], "description": v["description"]}) for k, v in catalog.items()))
        return result


WATCH_FILE = re.compile(r"^/[A-Za-z0-9_./*?-]+$")
WATCH_UNIT = re.compile(r"^[A-Za-z0-9@_.-]+$")


def _watch_is_valid(watch):
    """A vService's watch list goes into a shell on the nodes: absolute paths or globs, unit names, nothing else."""
    if not isinstance(watch, dict) or set(watch) - set(("files", "services")):
        return False
    files, units = watch.get("files") or [], watch.get("services") or []
    return (isinstance(files, list) and isinstance(units, list)
            and all(isinstance(f, str) and WATCH_FILE.match(f) for f in files)
            and all(isinstance(u, str) and WATCH_UNIT.match(u) for u in units))


SECRET_NAME = re.compile(r"(?i)(pass$|passw|secret|token|private_?key|key_b64|credential)")
MASK = "********"


def digest(manifest):
    """sha256 of the manifest as written, over canonical JSON (key order and layout do not count)."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _mask_value(value, spec):
    """``value`` with the settings ``spec`` marks no_log, or whose name says secret, masked (nested options too)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            option = (spec or {}).get(key) or {}
            if option.get("no_log") or SECRET_NAME.search(str(key)):
                out[key] = MASK
            else:
                out[key] = _mask_value(item, option.get("options"))
        return out
    if isinstance(value, list):
        return [_mask_value(item, spec) for item in value]
    return value


def mask(manifest, catalog):
    """The manifest as written with its vServices' secrets masked (what a release record keeps)."""
    out = dict(manifest) if isinstance(manifest, dict) else manifest
    if not isinstance(out, dict) or not isinstance(out.get("vservices"), list):
        return out
    masked = []
    for vs in out["vservices"]:
        if isinstance(vs, dict) and isinstance(vs.get("config"), dict):
            name = vs.get("name")
            spec = (catalog.get(name) or {}).get("argument_spec") or {}
            prefixed = dict((k[len(name) + 1:], v) for k, v in spec.items() if name and k.startswith(name + "_"))
            vs = dict(vs, config=_mask_value(vs["config"], prefixed))
        masked.append(vs)
    out["vservices"] = masked
    return out


def _plain(value):
    """Ansible 2.19 hands tagged/lazy containers to action plugins; jsonschema wants plain data."""
    if isinstance(value, dict):
        return dict((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
