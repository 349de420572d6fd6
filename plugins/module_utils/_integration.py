# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The integration pipeline's logic: the temporary copy of a manifest, and its results as JUnit XML.

The copy is what hpc.vcluster.integration deploys: the same image, vServices and storage under
its own name, on the fewest free nodes that cover every node group, on its own VLAN or PKey,
with the node validator added when the manifest has none. Pure functions (no site, no Ansible)
so that the unit tests cover every refusal.
"""
from __future__ import annotations

import copy
import os
import re
import xml.etree.ElementTree as ET

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
SUFFIX_RE = re.compile(r"^[a-z0-9_]{1,20}$")
SELECT_KEYS = {"role", "subrole", "arch", "class", "nettype"}
MAX_NAME = 40


class IntegrationError(Exception):
    """The copy cannot be made; ``errors`` says why, each naming the field or variable."""

    def __init__(self, errors):
        super().__init__("; ".join(errors))
        self.errors = list(errors)


def _absolute(path, base_dir):
    if not base_dir or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base_dir, path))


def _absolute_file_refs(value, base_dir):
    """Secret file references ({secret: {file: relative}}) made absolute, everything else as it is."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "secret" and isinstance(item, dict) and isinstance(item.get("file"), str):
                item = dict(item, file=_absolute(item["file"], base_dir))
                out[key] = item
            else:
                out[key] = _absolute_file_refs(item, base_dir)
        return out
    if isinstance(value, list):
        return [_absolute_file_refs(item, base_dir) for item in value]
    return value


def copy_name(name, suffix="it"):
    """The temporary copy's name: the manifest's with ``_<suffix>`` (a label of its own)."""
    errors = []
    if not isinstance(suffix, str) or not SUFFIX_RE.match(suffix):
        errors.append("vcluster_integration_suffix: 1 to 20 of a-z, 0-9 and _ (got %r)" % (suffix,))
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.append("name: the manifest's name must be lower case letters, digits and _ (got %r)" % (name,))
    if errors:
        raise IntegrationError(errors)
    out = "%s_%s" % (name, suffix)
    if len(out) > MAX_NAME:
        raise IntegrationError(["name: %r with the suffix _%s is %d characters, a vCluster's name at most %d: "
                                "give a shorter vcluster_integration_suffix" % (name, suffix, len(out), MAX_NAME)])
    return out


def temporary_copy(manifest, base_dir=None, suffix="it", counts=None, select=None, vlan=None, pkey=None,
                   validator_config=None):
    """The temporary copy of ``manifest`` (the tenant's YAML as loaded) for an integration run.

    - name: ``<name>_<suffix>``;
    - node groups: ``counts[group]`` free nodes (default 1; 0 is refused, a group the run must cover),
      chosen by the group's ``select``, or by ``select[group]`` for a group that names its nodes (those
      run the vCluster itself, never the copy);
    - network: ``vlan`` or ``pkey`` instead of the manifest's, required when it has one (the copy
      must not join the production vCluster's segment);
    - recipes and secret file references made absolute (the copy is written elsewhere);
    - the node validator vService added with ``validator_config`` when the manifest has none.

    Raises IntegrationError naming every problem at once.
    """
    if not isinstance(manifest, dict):
        raise IntegrationError(["manifest: a mapping (the vCluster manifest) is required"])
    counts = counts or {}
    select = select or {}
    errors = []
    if not isinstance(counts, dict):
        errors.append("vcluster_integration_counts: a mapping of node group to a node count")
        counts = {}
    if not isinstance(select, dict):
        errors.append("vcluster_integration_select: a mapping of node group to a select mapping")
        select = {}
    try:
        name = copy_name(manifest.get("name"), suffix)
    except IntegrationError as exc:
        errors.extend(exc.errors)
        name = None
    out = _absolute_file_refs(copy.deepcopy(manifest), base_dir)
    groups = out.get("nodes") if isinstance(out.get("nodes"), dict) else {}
    if not groups:
        errors.append("nodes: the manifest has no node group")
    for group in sorted(set(counts) - set(groups)):
        errors.append("vcluster_integration_counts.%s: the manifest has no node group %r (it has: %s)"
                      % (group, group, ", ".join(sorted(groups)) or "none"))
    for group in sorted(set(select) - set(groups)):
        errors.append("vcluster_integration_select.%s: the manifest has no node group %r" % (group, group))
    new_groups = {}
    for group, spec in sorted(groups.items()):
        spec = dict(spec) if isinstance(spec, dict) else {}
        count = counts.get(group, 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1 or count > 64:
            errors.append("vcluster_integration_counts.%s: a node count from 1 to 64 (got %r)" % (group, count))
            count = 1
        elif "count" in spec and isinstance(spec["count"], int) and not counts.get(group) and spec["count"] < count:
            count = spec["count"]
        chosen = select.get(group, spec.get("select"))
        if "nodes" in spec and group not in select:
            errors.append("nodes.%s names its nodes (they run the vCluster itself): give "
                          "vcluster_integration_select.%s (for example {role: Compute}) for the copy's free ones"
                          % (group, group))
        if chosen is not None and (not isinstance(chosen, dict) or set(chosen) - SELECT_KEYS):
            errors.append("vcluster_integration_select.%s: a mapping of %s" % (group, ", ".join(sorted(SELECT_KEYS))))
        spec.pop("nodes", None)
        spec["count"] = count
        if chosen:
            spec["select"] = dict(chosen)
        if isinstance(spec.get("image"), dict) and spec["image"].get("recipe"):
            spec["image"]["recipe"] = _absolute(spec["image"]["recipe"], base_dir)
        new_groups[group] = spec
    out["nodes"] = new_groups
    if isinstance(out.get("image"), dict) and out["image"].get("recipe"):
        out["image"]["recipe"] = _absolute(out["image"]["recipe"], base_dir)
    network = out.get("network")
    if isinstance(network, dict) and "vlan" in network:
        if vlan in (None, ""):
            errors.append("network.vlan: the copy needs a VLAN of its own (not %s, the vCluster's): "
                          "give vcluster_integration_vlan" % network["vlan"])
        elif isinstance(vlan, bool) or not isinstance(vlan, int) or not 2 <= vlan <= 4094 or vlan == network["vlan"]:
            errors.append("vcluster_integration_vlan: a VLAN from 2 to 4094 other than the vCluster's %s (got %r)"
                          % (network["vlan"], vlan))
        else:
            out["network"] = {"vlan": vlan}
    elif isinstance(network, dict) and "pkey" in network:
        if pkey in (None, ""):
            errors.append("network.pkey: the copy needs a partition key of its own (not %s, the vCluster's): "
                          "give vcluster_integration_pkey" % network["pkey"])
        elif (not isinstance(pkey, str) or not re.match(r"^0x[0-7]?[0-9a-fA-F]{1,3}$", pkey)
              or int(pkey, 16) == int(network["pkey"], 16)):
            errors.append("vcluster_integration_pkey: a partition key 0x0001-0x7fff other than the vCluster's %s "
                          "(got %r)" % (network["pkey"], pkey))
        else:
            out["network"] = dict(network, pkey=pkey)
    vservices = out.get("vservices") if isinstance(out.get("vservices"), list) else []
    names = [vs.get("name") for vs in vservices if isinstance(vs, dict)]
    if "node_validator" not in names:
        if validator_config is None:
            errors.append("vservices: the manifest has no node_validator vService, which runs the checks: give "
                          "vcluster_integration_validator_config (its config, for example apt_repository and "
                          "reframe_index_url) to add it to the copy")
        elif not isinstance(validator_config, dict):
            errors.append("vcluster_integration_validator_config: a mapping (the node_validator vService's config)")
        elif "slurm" not in names:
            errors.append("vservices: the node validator runs under Slurm, which the manifest does not deploy")
        else:
            vservices = vservices + [{"name": "node_validator", "config": copy.deepcopy(validator_config)}]
            out["vservices"] = vservices
    if name:
        out["name"] = name
        if out.get("description"):
            out["description"] = ("integration copy of %s: %s" % (manifest["name"], out["description"]))[:200]
    if errors:
        raise IntegrationError(errors)
    return out


def junit_xml(suite, cases):
    """JUnit XML (the schema Jenkins, GitLab and GitHub read) of ``cases``: dicts with ``name``,
    ``classname``, ``time`` (seconds), ``result`` (pass, fail, error, skip) and ``message``/``output``."""
    failures = sum(1 for c in cases if c.get("result") == "fail")
    errors = sum(1 for c in cases if c.get("result") == "error")
    skipped = sum(1 for c in cases if c.get("result") == "skip")
    total = sum(float(c.get("time") or 0) for c in cases)
    root = ET.Element("testsuites", name=str(suite), tests=str(len(cases)), failures=str(failures),
                      errors=str(errors), skipped=str(skipped), time="%.3f" % total)
    ts = ET.SubElement(root, "testsuite", name=str(suite), tests=str(len(cases)), failures=str(failures),
                       errors=str(errors), skipped=str(skipped), time="%.3f" % total)
    for case in cases:
        el = ET.SubElement(ts, "testcase", name=str(case.get("name", "?")), classname=str(case.get("classname", suite)),
                           time="%.3f" % float(case.get("time") or 0))
        result = case.get("result", "error")
        if result in ("fail", "error", "skip"):
            tag = {"fail": "failure", "error": "error", "skip": "skipped"}[result]
            sub = ET.SubElement(el, tag, message=str(case.get("message", ""))[:1000])
            sub.text = str(case.get("output", ""))[-20000:]
        elif result != "pass":
            sub = ET.SubElement(el, "error", message="unknown result %r" % (result,))
    return ET.tostring(root, encoding="unicode")
