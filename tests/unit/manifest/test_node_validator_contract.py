"""The node validator's contract (roles/node_validator/meta/vservice.yml): what reaches nhc.conf, a
ReFrame check directory or a command line is refused on the controller, the field named."""
from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import load_role
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import contract_errors

ROLE = pathlib.Path(__file__).resolve().parents[3] / "roles" / "node_validator"


@pytest.fixture(scope="module", name="schema")
def fixture_schema():
    return load_role(str(ROLE))["config_schema"]


def test_a_full_valid_config(schema):
    config = {"vservices": ["slurm"], "memory_tolerance": 5, "mount_max_used": 95, "mounts": ["/scratch"],
              "devices": ["/dev/fuse", "/dev/cxi0"], "daemons": [{"process": "cron", "user": "root"}],
              "checks": [{"check": "check_fs_free", "args": ["/tmp", "1GB"]}, {"check": "check_hw_eth", "args": ["eth0"]}],
              "timeout": 30, "reframe_index_url": "http://10.252.0.2/simple/",
              "reframe_checks": ["/srv/checks/site_checks.py"], "reframe_timeout": 900}
    assert contract_errors(schema, config, "config") == []


@pytest.mark.parametrize("config, field", [
    ({"checks": [{"check": "rm -rf /"}]}, "checks[0].check"),
    ({"checks": [{"check": "check_fs_free", "args": ["/tmp; reboot"]}]}, "checks[0].args[0]"),
    ({"checks": [{"check": "check_fs_free", "args": ["$(id)"]}]}, "checks[0].args[0]"),
    ({"checks": [{"check": "check_fs_free", "extra": 1}]}, "checks[0]"),
    ({"mounts": ["scratch"]}, "mounts[0]"),
    ({"mounts": ["/scratch/../etc"]}, "mounts[0]"),
    ({"devices": ["/etc/passwd"]}, "devices[0]"),
    ({"devices": ["/dev/../etc/shadow"]}, "devices[0]"),
    ({"daemons": [{"process": "cron"}]}, "daemons[0]"),
    ({"daemons": [{"process": "cron x", "user": "root"}]}, "daemons[0].process"),
    ({"memory_tolerance": 80}, "memory_tolerance"),
    ({"mount_max_used": 101}, "mount_max_used"),
    ({"timeout": 0}, "timeout"),
    ({"reframe_index_url": "ftp://mirror/simple"}, "reframe_index_url"),
    ({"reframe_checks": ["/srv/checks/site_checks.sh"]}, "reframe_checks[0]"),
    ({"reframe_checks": ["relative/checks.py"]}, "reframe_checks[0]"),
    ({"vservices": ["slurm; reboot"]}, "vservices[0]"),
])
def test_refused_with_the_field_named(schema, config, field):
    errors = contract_errors(schema, config, "config")
    assert errors, config
    assert any(e.startswith("config.%s" % field) or ("config.%s:" % field) in e for e in errors), errors


def test_the_allowed_nhc_checks_only_read_the_node():
    allowed = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__node_validator_allowed_checks"]
    assert "check_ps_service" not in allowed  # it can start, restart and kill daemons
    assert all(name.startswith("check_") for name in allowed)
    assert len(allowed) == len(set(allowed))
