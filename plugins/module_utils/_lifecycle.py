# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an update changes, and in which batches: pure functions behind the lifecycle filters.

An update compares what each node boots now (BSS, read by boot_params_info; power by
power_info) with what the new manifest wants, and the vServices of the latest release with
the new ones, and classifies each change by what it costs: a node whose image or kernel
parameters change needs a reboot (drain first); a vService whose version, source or a
setting its role cannot take live changes needs a restart; a setting the daemon takes
live (the role's meta/vservice.yml ``reconfigure``) only a reconfigure.
"""
from __future__ import annotations

import copy
import math
import re

MASK = "********"


class LifecycleError(ValueError):
    """The inputs cannot give a plan; the message says what to fix."""


def node_changes(plan, boot_images, boot_info, power_info):
    """{xname: {node_group, changes: [...], reboot, boot}} for every planned node.

    ``changes`` names what differs: ``join`` (new member), ``image``, ``kernel_params``,
    ``power_on`` (the node is off). ``reboot``: the node runs and must boot again (drain it
    first); ``boot``: its boot parameters change.
    """
    groups = dict((g["node_group"], g) for g in plan.get("boot_groups") or [])
    current_image = (boot_info or {}).get("image") or {}
    current_params = (boot_info or {}).get("kernel_params") or {}
    power = (power_info or {}).get("power_state") or {}
    added = set(plan.get("add") or [])
    out = {}
    for node in plan.get("nodes") or []:
        xname, group = node["xname"], node["node_group"]
        wanted_ref = (boot_images or {}).get(group)
        wanted_params = (groups.get(group) or {}).get("kernel_params") or ""
        changes = []
        if xname in added:
            changes.append("join")
        if wanted_ref is not None and current_image.get(xname) != wanted_ref:
            changes.append("image")
        if wanted_params and current_params.get(xname, "") != wanted_params:
            changes.append("kernel_params")
        is_on = power.get(xname) == "on"
        if not is_on:
            changes.append("power_on")
        boot = "image" in changes or "kernel_params" in changes
        out[xname] = {"node_group": group, "changes": changes, "boot": boot, "reboot": boot and is_on}
    return out


def _by_name(manifest):
    return dict((v.get("name"), v) for v in (manifest or {}).get("vservices") or [] if isinstance(v, dict))


def _changed_keys(old, new):
    keys = set(old) | set(new)
    return sorted(k for k in keys if old.get(k) != new.get(k))


def _has_mask(value):
    if isinstance(value, dict):
        return any(_has_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_mask(v) for v in value)
    return value == MASK


def vservice_changes(old_manifest, new_manifest, vservices, digest_changed=True):
    """[{name, change, detail}] between the latest release's manifest and the new one (both masked).

    ``vservices``: the new manifest's normalized vServices (their ``reconfigure`` lists the
    settings the role applies without a restart). ``change`` is ``added``, ``removed``,
    ``restart`` (version, source, or a setting that needs it; a masked secret that may have
    changed) or ``reconfigure``.
    """
    old, new = _by_name(old_manifest), _by_name(new_manifest)
    live = dict((v.get("name"), set(v.get("reconfigure") or [])) for v in vservices or [])
    out = []
    for name in [v.get("name") for v in (new_manifest or {}).get("vservices") or []]:
        if name not in old:
            out.append({"name": name, "change": "added", "detail": "new vService"})
            continue
        before, after = old[name], new[name]
        moved = [k for k in ("version", "source", "nodes", "after") if before.get(k) != after.get(k)]
        keys = _changed_keys(before.get("config") or {}, after.get("config") or {})
        if moved:
            out.append({"name": name, "change": "restart", "detail": "changed: " + ", ".join(moved + keys)})
        elif keys:
            kind = "reconfigure" if set(keys) <= live.get(name, set()) else "restart"
            out.append({"name": name, "change": kind, "detail": "config: " + ", ".join(keys)})
        elif digest_changed and _has_mask(after.get("config") or {}):
            out.append({"name": name, "change": "restart", "detail": "a secret of its config may have changed"})
    for name in old:
        if name not in new:
            out.append({"name": name, "change": "removed", "detail": "no longer in the manifest (not stopped)"})
    return out


def _count(value, total, what):
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return max(1, int(math.floor(total * float(text[:-1]) / 100.0)))
        number = int(text)
    except ValueError:
        raise LifecycleError("%s must be a number of nodes or a percentage, got %r" % (what, value))
    if number < 1:
        raise LifecycleError("%s must be at least 1, got %r" % (what, value))
    return number


def batches(nodes, size, max_unavailable=None, total=None, unavailable=0):
    """``nodes`` cut into batches of at most ``size``, so that with ``unavailable`` nodes already out of
    service no more than ``max_unavailable`` (of ``total``) are ever unavailable."""
    nodes = list(nodes or [])
    total = total or len(nodes) or 1
    per_batch = _count(size, total, "batch size")
    if max_unavailable not in (None, ""):
        room = _count(max_unavailable, total, "max unavailable") - int(unavailable or 0)
        if room < 1:
            raise LifecycleError("%d node(s) are already unavailable, max unavailable is %s: no batch can start"
                                 % (unavailable, max_unavailable))
        per_batch = min(per_batch, room)
    return [nodes[i:i + per_batch] for i in range(0, len(nodes), per_batch)]


def _paths_of(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths_of(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths_of(item, path + (index,))
    elif value == MASK:
        yield path


def _get(value, path):
    for part in path:
        value = value[part]
    return value


def release_manifest(record, secrets_from=None):
    """The manifest to apply again from a release record (a rollback).

    Images are not rebuilt (their recipes are dropped: the release booted them, they exist).
    Secrets the record masked are taken from ``secrets_from`` (a manifest holding them, for
    example the current one), matched by vService name and path; a secret no source holds
    stops the rollback with the path that lacks it.
    """
    manifest = copy.deepcopy((record or {}).get("manifest") or {})
    if not manifest:
        raise LifecycleError("release %s has no manifest" % (record or {}).get("id"))
    # the IMS image each (name, tag) booted, as the record noted it (CSM builds are booted by id)
    ims = dict(((i.get("name"), i.get("tag")), (i.get("ref") or {}).get("id"))
               for i in ((record.get("images") or {}).values()) if (i.get("ref") or {}).get("id"))
    images = [manifest.get("image")] + [g.get("image") for g in (manifest.get("nodes") or {}).values()
                                        if isinstance(g, dict)]
    for image in [i for i in images if isinstance(i, dict)]:
        image.pop("recipe", None)
        if (image.get("name"), image.get("tag")) in ims and not image.get("ims_id"):
            image["ims_id"] = ims[(image.get("name"), image.get("tag"))]
    source = _by_name(secrets_from or {})
    missing = []
    for index, vs in enumerate(manifest.get("vservices") or []):
        for path in list(_paths_of(vs.get("config") or {})):
            try:
                value = _get((source.get(vs.get("name")) or {}).get("config") or {}, path)
            except (KeyError, IndexError, TypeError):
                value = MASK
            if value == MASK:
                missing.append("vservices[%d].config.%s" % (index, ".".join(str(p) for p in path)))
                continue
            target = vs["config"]
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
    if missing:
        raise LifecycleError("release %s keeps these secrets masked: %s; give a manifest that holds them "
                             "(vcluster_secrets_from)" % (record.get("id"), ", ".join(missing)))
    return manifest


# ---------------------------------------------------------------------------- heal
#: Slurm reasons the lifecycle may act on (heal resets and resumes such nodes): the node validator's
#: (NHC), the lifecycle's own heal drains, and what slurmctld sets by itself when a node stops
#: answering. Any other reason is an administrator's (or an update's): heal leaves the node alone.
HEAL_REASONS = r"^(NHC: |vcluster: heal|Not responding|Node unexpectedly rebooted|Kill task failed|Prolog error|Epilog error)"
#: SMD states of a node that is not up (Ready and On are)
_SMD_DOWN = ("Off", "Standby", "Halt", "Empty", "Unknown", "Populated")


def _slurm_rows(lines):
    rows = {}
    for line in lines or []:
        parts = (line or "").split("|", 2)
        if len(parts) == 3 and parts[0]:
            rows.setdefault(parts[0], (parts[1].strip(), parts[2].strip()))
    return rows


def failed_nodes(nodes, power_state=None, components=None, sinfo=None, reasons=HEAL_REASONS):
    """The failed nodes among ``nodes``, and those an administrator took out (left alone).

    ``nodes``: [{xname, host, slurm_name, node_group, heal}], ``heal`` false for nodes heal only
    reports (service nodes); ``power_state``: {xname: on|off|undefined} (power_info);
    ``components``: {xname: {state, flag}} (SMD); ``sinfo``: ``%N|%T|%E`` lines (``None``: Slurm was
    not read). Returns ``{"failed": {xname: {host, node_group, heal, what: [...]}}, "left": {xname: reason}}``.
    """
    pattern = re.compile(reasons or HEAL_REASONS)
    rows = _slurm_rows(sinfo)
    failed, left = {}, {}
    for node in nodes:
        x = node["xname"]
        what = []
        power = (power_state or {}).get(x)
        if power is not None and power != "on":
            what.append("power: %s" % power)
        comp = (components or {}).get(x) or {}
        if comp.get("state") in _SMD_DOWN:
            what.append("management plane: state %s" % comp["state"])
        if comp.get("flag") == "Alert":
            what.append("management plane: flag Alert")
        row = rows.get(node.get("slurm_name") or "")
        if row is not None:
            state, reason = row
            out = re.match(r"^(down|drain|fail)", state) is not None
            if out and reason and reason != "none" and not pattern.search(reason):
                left[x] = "slurm: %s (%s)" % (state, reason)
                continue
            if out or state.endswith("*"):
                what.append("slurm: %s%s" % (state, " (%s)" % reason if reason and reason != "none" else ""))
        if what:
            failed[x] = {"host": node.get("host") or x, "node_group": node.get("node_group") or "",
                         "heal": bool(node.get("heal", True)), "what": what}
    return {"failed": failed, "left": left}
