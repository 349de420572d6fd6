"""Field rules and role contracts, one by one (the hostile suite covers them end to end)."""
from __future__ import annotations

import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import contract_errors, scrub
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest_rules import (
    DEFAULT_POLICY, git_source_problem, git_version_problem, path_problem, short, source_problem, text_errors)


@pytest.mark.parametrize("url", ["https://git.example.org/hpc/role.git", "https://git.example.org:8443/a/b",
                                 "ssh://git@git.example.org:2222/hpc/role.git", "git@git.example.org:hpc/role.git",
                                 "https://[fd00::1]/r.git"])
def test_allowed_git_sources(url):
    assert git_source_problem(url, DEFAULT_POLICY) is None


def test_site_settings_widen_or_narrow_git_sources():
    local = dict(DEFAULT_POLICY, git_schemes=["https", "file"])
    assert git_source_problem("file:///srv/git/role.git", local) is None
    assert "file:///<normalised absolute path>" in git_source_problem("file:///srv/../etc", local)
    assert "the ssh transport is not allowed" in git_source_problem("git@h:r.git", local)
    only = dict(DEFAULT_POLICY, git_sources=["https://git.example.org/vservices/"])
    assert git_source_problem("https://git.example.org/vservices/a.git", only) is None
    assert "is not from a source this site allows" in git_source_problem("https://evil.example/a.git", only)


@pytest.mark.parametrize("version", ["v1.2.3", "main", "release/2026.11", "0123abc", "1.0+build"])
def test_git_versions(version):
    assert git_version_problem(version) is None


@pytest.mark.parametrize("version", ["-b", "a..b", "a/", "a.lock", "x@{1}", "a b", "a~1", "a^", "a:b", ".hidden",
                                     "a/.b", "a" * 129])
def test_bad_git_versions(version):
    assert git_version_problem(version)


@pytest.mark.parametrize("path,ok", [("/scratch", True), ("/home", True), ("/var/lib/data", True), ("/opt/x", True),
                                     ("/", False), ("/etc", False), ("/usr/local", False), ("/tmp", False),
                                     ("/var", False), ("/proc/1", False), ("/a/./b", False), ("relative", False)])
def test_mount_points(path, ok):
    assert (path_problem(path) is None) == ok


@pytest.mark.parametrize("kind,source,ok", [
    ("nfs", "fs1:/x", True), ("nfs", "10.1.2.3:/", True), ("nfs", "[fd00::1]:/e", True), ("nfs", "fs1:x", False),
    ("nfs", "-o:/x", False), ("nfs", "fs1:/x y", False), ("vast", "vip.example:/d/e", True),
    ("lustre", "10.0.0.1@tcp0:/fs", True), ("lustre", "a@o2ib:b@o2ib:/fs/sub", True), ("lustre", "a@tcp:/toolongfs", False),
    ("bind", "/global/apps", True), ("bind", "/root/.ssh", False), ("bind", "rel", False)])
def test_mount_sources(kind, source, ok):
    assert (source_problem(kind, source) is None) == ok


def test_text_rules_and_where_newlines_are_documented():
    data = {"description": "a\nb\tc", "name": "x\ny", "k": {"v": "\u202e"}}
    errors = text_errors(data, lambda path: path == ["description"])
    assert len(errors) == 2 and errors[1].startswith("name: control character U+000A")
    assert errors[0].startswith("k.v: control character U+202E")
    assert text_errors({"a": {"b\x00": 1}})[0].startswith("a (key 'b\\x00'): control character U+0000")


def test_short_quotes_only_a_prefix():
    assert short("x" * 1000) == "'%s'... (1000 characters)" % ("x" * 40)
    assert short(list(range(100))) == "a list of 100 items"


def test_contract_keywords_and_messages():
    schema = {"properties": {
        "items": {"type": "array", "x-unique-by": "name"},
        "key": {"type": "string", "anyOf": [{"const": ""}, {"x-base64-min-bytes": 4}], "x-message": "a key"},
        "conf": {"type": "object", "propertyNames": {"pattern": "^[A-Z]+$", "x-message": "upper case"}}}}
    errors = contract_errors(schema, {"items": [{"name": "a"}, {"name": "a"}], "key": "YWJj", "conf": {"lower": 1}},
                             "cfg", hidden=["key"])
    assert errors == ["cfg.conf: upper case (the key 'lower')", "cfg.items: name 'a' is also item 0", "cfg.key: a key"]
    assert contract_errors(schema, {"key": "YWJjZA=="}, "cfg") == []


def test_scrub_masks_every_secret():
    assert scrub("value 's3cr3t' and s3cr3t-long", ["s3cr3t", "s3cr3t-long"]) == "value '********' and ********"
