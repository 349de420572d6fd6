# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the hpc.vcluster.hostlist_compress and hostlist_expand filters."""
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.vcluster.plugins.filter import hostlist as plugin


def test_filters_are_registered():
    filters = plugin.FilterModule().filters()
    assert filters["hostlist_compress"] is plugin.hostlist_compress
    assert filters["hostlist_expand"] is plugin.hostlist_expand


@pytest.mark.parametrize("names, expected", [
    (["nid000002", "nid000001", "nid000003", "nid000004"], "nid[000001-000004]"),
    (["nid000001", "nid000002", "nid000004"], "nid[000001-000002,000004]"),
    (["c-2", "login", "c-1"], "c-[1-2],login"),
    ("c-2,login,c-1", "c-[1-2],login"),
    (["a", "a", "b"], "a,b"),
    (["solo"], "solo"),
    ([], ""),
    ("", ""),
    (["n9", "n10"], "n[9-10]"),
])
def test_compress(names, expected):
    assert plugin.hostlist_compress(names) == expected


def test_compress_ignores_order():
    names = ["nid000010", "nid000003", "nid000001", "nid000002"]
    assert plugin.hostlist_compress(names) == plugin.hostlist_compress(sorted(names))


@pytest.mark.parametrize("bad", [["nid[1-2]"], ["a b"], [1], {"a": 1}, 42])
def test_compress_rejects(bad):
    with pytest.raises(AnsibleFilterError, match="hostlist_compress"):
        plugin.hostlist_compress(bad)


@pytest.mark.parametrize("expression, expected", [
    ("nid[000001-000003],login1", ["nid000001", "nid000002", "nid000003", "login1"]),
    ("nid[000001-000003,7]", ["nid000001", "nid000002", "nid000003", "nid7"]),
    (["c[1-2]", "c[2-3]"], ["c1", "c2", "c2", "c3"]),
    ("", []),
    ([], []),
])
def test_expand(expression, expected):
    assert plugin.hostlist_expand(expression) == expected


def test_expand_unique():
    assert plugin.hostlist_expand(["c[1-2]", "c[2-3]"], unique=True) == ["c1", "c2", "c3"]


def test_round_trip():
    names = [f"nid{i:06d}" for i in (1, 2, 3, 5, 8, 9, 10)]
    assert plugin.hostlist_expand(plugin.hostlist_compress(names)) == names


def test_expand_bad_expression_names_it():
    with pytest.raises(AnsibleFilterError, match=r"'nid\[3-' is not a valid hostlist expression"):
        plugin.hostlist_expand("nid[3-")


def test_missing_library_is_named(monkeypatch):
    monkeypatch.setattr(plugin, "_hostlist", None)
    with pytest.raises(AnsibleFilterError, match="python-hostlist"):
        plugin.hostlist_compress(["a"])
    with pytest.raises(AnsibleFilterError, match="hostlist_expand filter needs it"):
        plugin.hostlist_expand("a")
