# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slurm hostlist expressions (``nid[000001-000004]``) both ways, with python-hostlist.

The documentation of each filter is in ``hostlist_compress.yml`` and
``hostlist_expand.yml`` next to this file.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible.errors import AnsibleFilterError

try:
    import hostlist as _hostlist
except ImportError:  # pragma: no cover - the unit tests patch _hostlist to None instead
    _hostlist = None

_MISSING = ("the python-hostlist library is not installed on the Ansible controller "
            "(pip install python-hostlist); the hpc.vcluster.{name} filter needs it")


def _library(name):
    if _hostlist is None:
        raise AnsibleFilterError(_MISSING.format(name=name))
    return _hostlist


def _names(value, name):
    """A list of host names from a string (comma-separated) or a list of strings."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = list(value)
    else:
        raise AnsibleFilterError(
            f"hpc.vcluster.{name}: expected a list of host names or a string, got {type(value).__name__}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise AnsibleFilterError(
                f"hpc.vcluster.{name}: every host name must be a string, got {item!r} ({type(item).__name__})")
        item = item.strip()
        if item:
            out.append(item)
    return out


def hostlist_compress(value):
    """Fold host names into one Slurm hostlist expression (sorted, duplicates dropped)."""
    lib = _library("hostlist_compress")
    names = _names(value, "hostlist_compress")
    for item in names:
        if any(ch in item for ch in "[], "):
            raise AnsibleFilterError(
                f"hpc.vcluster.hostlist_compress: {item!r} is not a plain host name "
                "(expand hostlist expressions first with hpc.vcluster.hostlist_expand)")
    if not names:
        return ""
    return lib.collect_hostlist(list(dict.fromkeys(names)))


def hostlist_expand(value, unique=False):
    """Expand Slurm hostlist expressions into a list of host names."""
    lib = _library("hostlist_expand")
    if isinstance(value, str):
        expressions = [value]
    else:
        expressions = _names(value, "hostlist_expand")
    out = []
    for expression in expressions:
        if not expression.strip():
            continue
        try:
            out.extend(lib.expand_hostlist(expression, allow_duplicates=not unique))
        except lib.BadHostlist as exc:
            raise AnsibleFilterError(
                f"hpc.vcluster.hostlist_expand: {expression!r} is not a valid hostlist expression: {exc}") from exc
    if unique:
        out = list(dict.fromkeys(out))
    return out


class FilterModule:
    """Slurm hostlist filters."""

    def filters(self):
        return {
            "hostlist_compress": hostlist_compress,
            "hostlist_expand": hostlist_expand,
        }
