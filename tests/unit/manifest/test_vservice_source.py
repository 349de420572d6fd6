"""External vService roles pinned per commit: the version asked is what runs, a change of version is a change.

A real git repository (file://, which only a site's policy can allow) with two tagged
versions of a small role.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import check_manifest
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import ManifestError
from ansible_collections.hpc.vcluster.plugins.plugin_utils._vservice_source import SourceError, fetch, verify


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit_version(repo: Path, version: str, no_log: bool = False) -> str:
    (repo / "tasks").mkdir(parents=True, exist_ok=True)
    (repo / "meta").mkdir(exist_ok=True)
    (repo / "tasks" / "main.yml").write_text("---\n- name: version\n  ansible.builtin.debug:\n    msg: %s\n" % version)
    (repo / "meta" / "argument_specs.yml").write_text(
        "---\nargument_specs:\n  main:\n    options:\n      tuning_level: {type: int}\n"
        "      tuning_token: {type: str, no_log: %s}\n" % ("true" if no_log else "false"))
    (repo / "meta" / "vservice.yml").write_text(
        "---\nversion: '%s'\nconfig_schema:\n  properties:\n    tuning_level: {maximum: 3, x-message: 0 to 3}\n"
        % version.lstrip("v"))
    git("add", "-A", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", version, cwd=repo)
    git("tag", version, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


@pytest.fixture()
def repo(tmp_path):
    path = tmp_path / "tuning"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    return path


def test_each_version_is_its_own_verified_checkout(repo, tmp_path):
    cache = tmp_path / "cache"
    c1 = commit_version(repo, "v1")
    c2 = commit_version(repo, "v2")
    url = "file://%s" % repo
    one = fetch("tuning", url, "v1", str(cache), ["file"])
    assert one["changed"] and one["commit"] == c1 and Path(one["path"]).name == "tuning"
    assert "msg: v1" in (Path(one["path"]) / "tasks" / "main.yml").read_text()
    assert fetch("tuning", url, "v1", str(cache), ["file"]) == dict(one, changed=False)
    two = fetch("tuning", url, "v2", str(cache), ["file"])
    assert two["changed"] and two["commit"] == c2 and two["path"] != one["path"]
    assert fetch("tuning", url, "main", str(cache), ["file"])["commit"] == c2
    assert fetch("tuning", url, c1[:10], str(cache), ["file"])["path"] == one["path"]
    # a changed or added file is noticed, and the checkout made again
    (Path(one["path"]) / "tasks" / "main.yml").write_text("- name: tampered\n")
    assert not verify(one["path"], c1)
    again = fetch("tuning", url, "v1", str(cache), ["file"])
    assert again["changed"] and "msg: v1" in (Path(again["path"]) / "tasks" / "main.yml").read_text()
    (Path(one["path"]) / "vars").mkdir()
    (Path(one["path"]) / "vars" / "main.yml").write_text("x: 1\n")
    assert not verify(one["path"], c1)


def test_unknown_version_and_refused_transport(repo, tmp_path):
    commit_version(repo, "v1")
    url = "file://%s" % repo
    with pytest.raises(SourceError, match="has no tag, branch or commit v9"):
        fetch("tuning", url, "v9", str(tmp_path / "c"), ["file"])
    with pytest.raises(SourceError, match="cannot fetch"):  # git itself refuses what the site does not allow
        fetch("tuning", url, "v1", str(tmp_path / "c2"), ["https", "ssh"])


def manifest_with(url, config):
    return {"name": "ext", "nodes": {"c": {"count": 1, "select": {"role": "Compute"}}}, "image": {"name": "a", "tag": "b"},
            "vservices": [{"name": "tuning", "source": {"git": url, "version": "v2"}, "config": config}]}


def test_the_manifest_runs_the_pinned_role_and_checks_its_contract(repo, tmp_path, monkeypatch):
    commit_version(repo, "v1")
    c2 = commit_version(repo, "v2", no_log=True)
    url = "file://%s" % repo
    policy = {"git_schemes": ["https", "file"]}
    cache = str(tmp_path / "cache")
    out = check_manifest(manifest_with(url, {"tuning_level": 2}), "m", str(tmp_path), policy, vservice_cache=cache)
    vs = out["vservices"][0]
    assert vs["source"]["commit"] == c2 and vs["role"].endswith("/%s/tuning" % c2) and vs["fetched"] is True
    assert vs["vars"] == {"tuning_level": 2} and vs["has_destroy"] is False
    with pytest.raises(ManifestError) as err:
        check_manifest(manifest_with(url, {"tuning_level": 7, "tuning_tokn": "x", "tuning_token": "clear-secret"}),
                       "m", str(tmp_path), policy, vservice_cache=cache)
    assert err.value.errors == [
        "vservices[0].config.tuning_token: a secret (the role marks it no_log): give it as {secret: {env: NAME}}, "
        "{secret: {file: PATH}}, !vault (or {secret: {vault: ...}}) or {secret: {lookup: NAME, terms: [...]}}, never "
        "in clear"]
    monkeypatch.setenv("VCLUSTER_SECRET_TOKEN", "t0ken-value")
    with pytest.raises(ManifestError) as err:
        check_manifest(manifest_with(url, {"tuning_level": 7, "tuning_tokn": "x",
                                           "tuning_token": {"secret": {"env": "VCLUSTER_SECRET_TOKEN"}}}),
                       "m", str(tmp_path), policy, vservice_cache=cache)
    assert err.value.errors == ["vservices[0].config.tuning_level: 0 to 3 (got 7)",
                                "vservices[0].config.tuning_tokn: unknown setting; it takes tuning_level, tuning_token"]
    with pytest.raises(ManifestError, match=r"vservices\[0\].source.git: 'file://.*: the file transport is not"):
        check_manifest(manifest_with(url, {}), "m", str(tmp_path), None, vservice_cache=cache)
