"""The NMN claim: a test lab left by a killed run is reclaimed, somebody else's lab is not."""
from __future__ import annotations

import json

import pytest

from podman_helpers import new_prefix, podman

from vcluster_lab.inventory_data import MGMT_NETWORK
from vcluster_lab.nodes.base import DriverError
from vcluster_lab.nodes.podman import PodmanDriver
from vcluster_lab.nmn_claim import claim_nmn, main, nmn_holder


def make_mgmt(prefix: str) -> str:
    name = f"{prefix}-mgmt"
    podman("network", "create", "--subnet", MGMT_NETWORK, "--label", "io.vcluster.lab=1",
           "--label", f"io.vcluster.lab.prefix={prefix}", name)
    return name


def networks() -> list[str]:
    return [row["name"] for row in json.loads(podman("network", "ls", "--format", "json").stdout)]


def test_orphaned_test_lab_is_reclaimed():
    with claim_nmn(wait=0):
        pass                                   # the range is free before the test starts
    orphan = make_mgmt(new_prefix())
    try:
        assert nmn_holder()["name"] == orphan
        assert main() == 0                     # the pre-flight leaves orphans to the claim
        with claim_nmn(wait=0):
            assert nmn_holder() is None
        assert orphan not in networks()
    finally:
        podman("network", "rm", orphan, check=False)


def test_someone_elses_lab_is_left_alone_and_named(tmp_path):
    other = make_mgmt("vcdemo" + new_prefix()[-4:])
    try:
        with pytest.raises(RuntimeError, match=rf"{other} \(lab vcdemo.*vcluster-lab down"):
            with claim_nmn(wait=0):
                pass
        assert other in networks()
        assert main() == 1                     # `make test` stops before any step
        driver = PodmanDriver(tmp_path, prefix=new_prefix(), mgmt_subnet=MGMT_NETWORK)
        with pytest.raises(DriverError, match=rf"already used by podman network {other} \(lab vcdemo"):
            driver.ensure_mgmt_network()
    finally:
        podman("network", "rm", other, check=False)
