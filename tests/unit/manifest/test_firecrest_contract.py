"""The firecrest vService's contract (roles/firecrest/meta/vservice.yml): a manifest sets the system,
the login node, the service's key and account (secrets) and the file systems; the site repository,
the IdP and the TLS files are the site's and refused. The role's pins match the site repository's."""
from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import load_role
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import contract_errors, site_setting_errors

ROOT = pathlib.Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "firecrest"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture(scope="module", name="entry")
def fixture_entry():
    return load_role(str(ROLE))


def test_a_tenant_config_is_valid(entry):
    config = {"system_name": "eiger", "login_host": "eiger-login.vcluster.internal", "login_port": 22,
              "ssh_users": ["alice", "f7t-health"], "ssh_private_key": KEY, "client_id": "firecrest-eiger",
              "client_secret": "s3cret", "health_interval": 60,
              "file_systems": [{"path": "/home", "data_type": "users", "default_work_dir": True},
                               {"path": "/scratch", "data_type": "scratch"}]}
    assert contract_errors(entry["config_schema"], config, "config") == []
    manifest = {"vservices": [{"name": "firecrest", "config": config}]}
    assert site_setting_errors(manifest, {"firecrest": entry}) == []


@pytest.mark.parametrize("config, field", [
    ({"system_name": "Eiger"}, "system_name"),
    ({"login_host": "login -oProxyCommand=sh"}, "login_host"),
    ({"login_host": "a;b"}, "login_host"),
    ({"login_port": 0}, "login_port"),
    ({"ssh_users": []}, "ssh_users"),
    ({"ssh_users": ["root\nx"]}, "ssh_users[0]"),
    ({"ssh_users": ["alice", "alice"]}, "ssh_users"),
    ({"ssh_private_key": "not a key"}, "ssh_private_key"),
    ({"client_id": "a b"}, "client_id"),
    ({"scheduler_version": "22.05; rm"}, "scheduler_version"),
    ({"health_interval": 1}, "health_interval"),
    ({"file_systems": [{"path": "/home/../etc"}]}, "file_systems[0].path"),
    ({"file_systems": [{"path": "/scratch", "data_type": "tmp"}]}, "file_systems[0].data_type"),
    ({"file_systems": [{"path": "/scratch", "mode": "x"}]}, "file_systems[0]"),
])
def test_refused_with_the_field_named(entry, config, field):
    errors = contract_errors(entry["config_schema"], config, "config")
    assert any(e.startswith("config.%s" % field) for e in errors), errors


@pytest.mark.parametrize("key", ["site_repository_url", "jwks_url", "token_url", "tls_key_path", "username_claim"])
def test_the_idp_repository_and_tls_are_the_sites(entry, key):
    manifest = {"vservices": [{"name": "firecrest", "config": {"ssh_users": ["alice"], key: "http://x"}}]}
    errors = site_setting_errors(manifest, {"firecrest": entry})
    assert len(errors) == 1 and errors[0].startswith("vservices[0].config.%s: a setting of the site" % key), errors


def test_site_settings_are_options_and_the_secrets_are_no_log(entry):
    options = {k[len("firecrest_"):] for k in entry["argument_spec"]}
    assert set(entry["site_settings"]) <= options
    assert set(entry["config_schema"]["properties"]) <= options
    for secret in ("ssh_private_key", "client_secret"):
        assert secret in entry["no_log"] or "firecrest_" + secret in entry["no_log"]


def test_the_pins_are_served_by_the_site_repository():
    pins = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__firecrest_python_pins"]
    served = yaml.safe_load((ROOT / "lab" / "vcluster_lab" / "services" / "repo" / "python.yml").read_text())
    hashes = {item["sha256"] for item in served.values()}
    missing = [pin["name"] for pin in pins if pin["sha256"] not in hashes]
    assert not missing, "pinned in the role, not served by the site repository: %s" % missing
    sources = yaml.safe_load((ROOT / "lab" / "vcluster_lab" / "services" / "repo" / "sources.yml").read_text())
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    archive = "firecrest-v2-%s.tar.gz" % role_vars["__firecrest_version"]
    assert sources[archive]["sha256"] == role_vars["__firecrest_source_sha256"]
