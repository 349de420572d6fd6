"""The manifest loader: bounds, duplicate keys, plain data only, every error with line and column."""
from __future__ import annotations

import pytest

from ansible_collections.hpc.vcluster.plugins.plugin_utils import _manifest_load as load
from ansible_collections.hpc.vcluster.plugins.plugin_utils._manifest_load import (
    MAX_DEPTH, copy_bounded, load_text)
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest_rules import ManifestError


def refused(text, **kw):
    with pytest.raises(ManifestError) as err:
        load_text(text, source="m.yml", **kw)
    (error,) = err.value.errors
    return error


def test_plain_data_and_shared_aliases_become_a_tree():
    data = load_text("a: &x {k: [1, 2.5, true, null, '2026-11-01']}\nb: *x\nc: {<<: *x, z: 1}\n")
    assert data == {"a": {"k": [1, 2.5, True, None, "2026-11-01"]}, "b": {"k": [1, 2.5, True, None, "2026-11-01"]},
                    "c": {"k": [1, 2.5, True, None, "2026-11-01"], "z": 1}}
    assert data["a"] is not data["b"] and data["a"]["k"] is not data["b"]["k"]  # later edits stay local


def test_dates_stay_strings():
    expected = {"tag": "2026-11-01", "when": "2026-11-01 10:00:00"}
    assert load_text("tag: 2026-11-01\nwhen: 2026-11-01 10:00:00\n") == expected


def test_duplicate_key_names_both_places():
    assert refused("a: 1\nb:\n  c: 1\n  c: 2\n") == (
        "m.yml: line 4, column 3: duplicate key 'c' (first at line 3, column 3): YAML would keep only the last one")


def test_merge_keys_may_be_overridden_but_explicit_keys_not_repeated():
    assert load_text("a: &a {x: 1, y: 2}\nb: {<<: *a, x: 3}\n")["b"] == {"x": 3, "y": 2}
    assert "duplicate key 'x'" in refused("a: &a {x: 1}\nb: {<<: *a, x: 3, x: 4}\n")


@pytest.mark.parametrize("text,kind", [("yes: 1\n", "boolean"), ("1: a\n", "number"), ("1.5: a\n", "number"),
                                       ("null: a\n", "null"), ("~: a\n", "null")])
def test_keys_must_be_strings(text, kind):
    assert refused(text).endswith("is read as a %s: write it in quotes" % kind)


def test_depth_is_bounded_where_the_composer_would_recurse():
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert load_text(ok)
    deep = "a: " + "[" * 100000 + "]" * 100000 + "\n"
    assert refused(deep) == "m.yml: line 1, column %d: nested deeper than 32 levels" % (3 + MAX_DEPTH)


def test_alias_bombs_cost_their_text_not_their_expansion():
    levels = ["l%d: &l%d [%s]\n" % (i, i, ",".join(["*l%d" % (i - 1)] * 10)) for i in range(1, 12)]
    bomb = "l0: &l0 [lol]\n" + "".join(levels)
    assert "holds more than 100000 values" in refused(bomb)
    chars = "x: &x '%s'\ny: [%s]\n" % ("a" * 100000, ",".join(["*x"] * 100))
    assert "holds more than 8388608 characters" in refused(chars)


def test_a_cycle_of_aliases_is_refused():
    assert refused("a: &a [1, *a]\n") == "m.yml: line 1, column 4: an alias refers to a value that contains it (a cycle)"
    assert "a cycle" in refused("a: &a {b: *a}\n")


@pytest.mark.parametrize("tag", ["!!binary aGk=", "!!set {a}", "!!omap [{a: 1}]", "!!timestamp 2026-01-01",
                                 "!!python/name:os.system", "!!python/object/apply:os.system [id]", "!custom x",
                                 "!unsafe '{{ x }}'"])
def test_only_plain_tags(tag):
    assert "is not allowed in a manifest" in refused("a: %s\n" % tag)


def test_vault_tag_becomes_a_reference_not_a_value():
    text = "k: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n"
    assert load_text(text) == {"k": {"secret": {"vault": "$ANSIBLE_VAULT;1.1;AES256\n6162"}}}
    assert "starts with $ANSIBLE_VAULT" in refused("k: !vault 'plain text'\n")
    assert "!vault takes the text" in refused("k: !vault [a]\n")


def test_decoding_errors_say_where():
    assert refused(b"a: 1\nb: caf\xe9\n") == (
        "m.yml: line 2, column 7: not UTF-8 text: byte 0xe9 cannot be decoded (invalid continuation byte)")
    assert refused("a: b\x07\n") == ("m.yml: line 1, column 5: character U+0007 is not allowed in YAML text "
                                     "(control characters are not allowed)")
    assert load_text("\ufeffa: 1\n") == {"a": 1}
    assert load_text(b"\xef\xbb\xbfa: 1\n") == {"a": 1}
    assert load_text("a: é\n".encode("utf-16")) == {"a": "é"}
    assert refused(b"\xff\xfea\x00:\x00 \x00\x00\xd8\n\x00") .startswith("m.yml: not valid UTF-16 text")


def test_syntax_errors_say_where():
    assert refused("a: [1, 2\nb: 3\n").startswith("m.yml: line 2, column 2: not valid YAML: did not find expected")
    assert refused("a: 1\n---\nb: 2\n").startswith("m.yml: line 2, column 1: not valid YAML: but found another")
    assert refused("a: *nowhere\n") == "m.yml: line 1, column 4: not valid YAML: found undefined alias 'nowhere'"


def test_numbers_are_bounded():
    assert load_text("a: %s\n" % ("9" * 64)) == {"a": int("9" * 64)}
    assert "an integer of more than 64 digits" in refused("a: %s\n" % ("9" * 65))
    assert "an integer of more than 64 digits" in refused("a: 0x%s\n" % ("f" * 80))


def test_size_is_bounded_before_parsing():
    assert refused("a: '%s'\n" % ("x" * load.MAX_BYTES)) == (
        "m.yml: more than 4194304 characters; a manifest is a few kilobytes")


def test_data_is_copied_within_the_same_bounds():
    shared = {"k": [1, 2]}
    data = copy_bounded({"a": shared, "b": shared, "t": (1, "x")})
    assert data == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}, "t": [1, "x"]} and data["a"] is not data["b"]
    cycle = []
    cycle.append(cycle)
    with pytest.raises(ManifestError, match=r"\[0\]: a value contains itself"):
        copy_bounded({"a": cycle})
    with pytest.raises(ManifestError, match="the key 1 is a number: keys are strings"):
        copy_bounded({"a": {1: "x"}})
    with pytest.raises(ManifestError, match="a set is not manifest data"):
        copy_bounded({"a": {1, 2}})
    wide = [list(range(1000))] * 200
    with pytest.raises(ManifestError, match="more than 100000 values"):
        copy_bounded({"a": wide})
    deep = []
    node = deep
    for _level in range(100):
        node.append([])
        node = node[0]
    with pytest.raises(ManifestError, match="nested deeper than 32 levels"):
        copy_bounded({"a": deep}, locate=lambda value: "vars.yml:3:1")


def test_data_conversion_hook():
    assert copy_bounded({"k": "CIPHER"}, convert=lambda v: {"secret": {"vault": v}} if v == "CIPHER" else v) == {
        "k": {"secret": {"vault": "CIPHER"}}}
