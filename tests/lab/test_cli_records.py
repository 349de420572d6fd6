"""The command line on a records-only lab: env, inventory, seed, fault, status, down.

No containers: ``up --records`` starts the control plane with the records driver, which
is what ``seed`` is for. SMD data must be visible through both faces with the
credentials ``env`` hands out.
"""
from __future__ import annotations

import os
import stat

import pytest
import yaml
from cli_helpers import Lab, free_port
from podman_helpers import leftovers, new_prefix

from vcluster_lab import cli


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("records") / "home", new_prefix(), free_port())
    try:
        lab.run("up", "--records", "--nodes", "2", "--service-nodes", "1", "--port", str(lab.port))
        yield lab
    finally:
        lab.run("down", check=False)


def test_env_gives_working_credentials_for_both_faces(lab):
    sh = lab.run("env").stdout
    assert "export VCLUSTER_SITE_KIND=openchami" in sh and "export LAB_ACCESS_TOKEN=" in sh
    oc = lab.env_json("openchami")
    assert oc["VCLUSTER_API_URL"] == lab.url and oc["VCLUSTER_SITE_NAME"] == "lab"
    assert os.path.isfile(oc["VCLUSTER_CA_PATH"])
    key = oc["VCLUSTER_LAB_SSH_KEY"]
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    csm = lab.env_json("csm")
    assert csm["VCLUSTER_SITE_KIND"] == "csm" and csm["VCLUSTER_CLIENT_ID"] == "admin-client"
    assert "LAB_ACCESS_TOKEN" not in csm and "VCLUSTER_CLIENT_SECRET" not in oc

    ochami = lab.session("openchami").get(f"{lab.url}/hsm/v2/State/Components").json()
    csm_view = lab.session("csm").get(f"{lab.url}/apis/smd/hsm/v2/State/Components").json()
    names = {c["ID"] for c in ochami["Components"]}
    assert {"x1000c0s0b0n0", "x1000c0s1b0n0", "x3000c0s0b0n0"} <= names
    assert names == {c["ID"] for c in csm_view["Components"]}
    eth = lab.session().get(f"{lab.url}/hsm/v2/Inventory/EthernetInterfaces",
                            params={"ComponentID": "x1000c0s1b0n0"}).json()
    assert eth[0]["IPAddresses"][0]["IPAddress"] == "10.252.1.2"
    assert eth[0]["Description"] == "nid000002"


def test_inventory_sources(lab):
    for face, plugin in (("openchami", "hpc.vcluster.openchami"), ("csm", "hpc.vcluster.csm")):
        source = yaml.safe_load(lab.run("inventory", "--face", face).stdout)
        assert source["plugin"] == plugin and source["api_url"] == lab.url
        assert source["site_name"] == "lab" and source["ca_path"].endswith("tls/ca.pem")
        assert source["compose"]["ansible_user"] == "'root'"
        assert source["compose"]["ansible_ssh_private_key_file"].strip("'").endswith("ssh/id_ed25519")


def test_seed_fault_and_status(lab):
    seeded = lab.run("seed", "--nodes", "10000", "--groups", "40", timeout=300)
    assert "seeded in" in seeded.stdout
    groups = lab.session().get(f"{lab.url}/hsm/v2/groups").json()
    assert len(groups) >= 40
    faults = lab.run("fault", "--latency", "5", "--token-ttl", "120").stdout
    assert '"latency_ms": 5' in faults and '"token_lifetime": 120' in faults
    killed = lab.run("fault", "--kill", "x1000c0s0b0n0").stdout
    assert "x1000c0s0b0n0" in killed
    cleared = lab.run("fault", "--clear").stdout
    assert '"latency_ms": 0' in cleared and "x1000c0s0b0n0" not in cleared
    status = lab.run("status").stdout
    assert "records driver" in status


def test_errors_are_clear(lab, tmp_path, capsys):
    other = Lab(tmp_path / "nohome", lab.prefix, free_port())
    proc = other.run("env", check=False)
    assert proc.returncode == 1 and "no lab server runs for" in proc.stderr
    proc = lab.run("up", "--nodes", "1", check=False)  # same home, other driver
    assert proc.returncode == 1 and "already runs (records driver" in proc.stderr
    assert cli.main(["image", "build", "--home", str(tmp_path / "h"),
                     str(tmp_path / "missing.yml")]) == 1
    assert "missing.yml: cannot read it" in capsys.readouterr().err


def test_down_stops_the_server_and_leaves_nothing(tmp_path):
    lab = Lab(tmp_path / "home", new_prefix(), free_port())
    lab.run("up", "--records", "--nodes", "1", "--port", str(lab.port))
    pid = int((lab.home / "server.pid").read_text())
    down = lab.run("down").stdout
    assert f"server: stopped (pid {pid})" in down
    assert not os.path.exists(f"/proc/{pid}") or b"vcluster" not in open(
        f"/proc/{pid}/cmdline", "rb").read()
    assert not any(leftovers(lab.prefix).values())
    assert "server: was not running" in lab.run("down").stdout
