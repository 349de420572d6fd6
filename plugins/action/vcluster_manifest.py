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

import os

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
        catalog[name] = {"version": str(info.get("version", "")), "after": info.get("after") or [],
                         "description": info.get("description", ""), "argument_spec": spec}
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
        result.update(changed=False, manifest=normalized,
                      vservice_order=[v["name"] for v in normalized["vservices"]],
                      catalog=dict((k, {"version": v["version"], "description": v["description"]}) for k, v in catalog.items()))
        return result


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
