"""The iam vService's contract (roles/iam/meta/vservice.yml): a manifest sets the vCluster's
groups and homes; the directory (URIs, DNs, bind password, CA) is the site's and refused."""
from __future__ import annotations

import pathlib

import pytest

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import load_role
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import contract_errors, site_setting_errors

ROLE = pathlib.Path(__file__).resolve().parents[3] / "roles" / "iam"


@pytest.fixture(scope="module", name="entry")
def fixture_entry():
    return load_role(str(ROLE))


def test_a_tenant_config_is_valid(entry):
    config = {"allowed_groups": ["hpc-users", "hpc_admins.1"], "home_base": "/scratch/home", "home_umask": "0027"}
    assert contract_errors(entry["config_schema"], config, "config") == []
    manifest = {"vservices": [{"name": "iam", "config": config}]}
    assert site_setting_errors(manifest, {"iam": entry}) == []


@pytest.mark.parametrize("config, field", [
    ({"allowed_groups": []}, "allowed_groups"),
    ({"allowed_groups": ["a b"]}, "allowed_groups[0]"),
    ({"allowed_groups": ["users,admins"]}, "allowed_groups[0]"),
    ({"allowed_groups": ["x\nsimple_allow_users = mallory"]}, "allowed_groups[0]"),
    ({"home_base": "home"}, "home_base"),
    ({"home_base": "/home/../etc"}, "home_base"),
    ({"home_base": "/home/%u"}, "home_base"),
    ({"home_umask": "0778"}, "home_umask"),
])
def test_refused_with_the_field_named(entry, config, field):
    errors = contract_errors(entry["config_schema"], config, "config")
    assert any(e.startswith("config.%s" % field) for e in errors), errors


@pytest.mark.parametrize("key", ["uris", "base_dn", "bind_dn", "bind_password", "ca", "domain", "min_id"])
def test_the_directory_is_the_sites(entry, key):
    manifest = {"vservices": [{"name": "site_config"}, {"name": "iam", "config": {"allowed_groups": ["g"], key: "x"}}]}
    errors = site_setting_errors(manifest, {"iam": entry})
    assert len(errors) == 1 and errors[0].startswith("vservices[1].config.%s: a setting of the site" % key), errors
    assert "a manifest may set allowed_groups, create_home, home_base, home_umask, ssh_keys" in errors[0]


def test_every_site_setting_is_an_option_of_the_role(entry):
    options = {k[len("iam_"):] for k in entry["argument_spec"]}
    assert set(entry["site_settings"]) <= options
    assert "bind_password" in entry["no_log"] or "iam_bind_password" in entry["no_log"]
