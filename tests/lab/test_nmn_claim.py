"""The NMN claim: a test lab left by a killed run is reclaimed, somebody else's lab is not."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from podman_helpers import new_prefix, podman

from vcluster_lab.inventory_data import MGMT_NETWORK
from vcluster_lab.nodes.base import DriverError
from vcluster_lab.nodes.podman import PodmanDriver
from vcluster_lab.nmn_claim import LOCK, SECOND_SITE, claim_nmn, claims_held, main, nmn_holder


def make_mgmt(prefix: str, subnet: str = MGMT_NETWORK) -> str:
    name = f"{prefix}-mgmt"
    podman("network", "create", "--subnet", str(subnet), "--label", "io.vcluster.lab=1",
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


def lock_is_free() -> bool:
    """Whether another process can take the claim's lock now (without waiting)."""
    probe = ("import fcntl, sys\nwith open(sys.argv[1], 'w') as f:\n"
             "    try:\n        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    except OSError:\n        sys.exit(1)\n")
    return subprocess.run([sys.executable, "-c", probe, str(LOCK)], check=False).returncode == 0


def test_second_site_claim_nests_under_the_first_and_keeps_the_lock():
    # a session holding the NMN claims the second site's range without waiting for itself
    with claim_nmn(wait=0):
        assert not lock_is_free() and claims_held() == 1
        with claim_nmn(wait=0, network=SECOND_SITE):
            assert not lock_is_free() and claims_held() == 2
        assert not lock_is_free()              # the first site's claim still holds it
    # released (another test run waiting for the lock may take it at once: ask this process)
    assert claims_held() == 0


def test_second_site_range_is_claimed_on_its_own():
    orphan = make_mgmt(new_prefix(), SECOND_SITE)
    other = None
    try:
        assert nmn_holder(SECOND_SITE)["name"] == orphan and nmn_holder() is None
        with claim_nmn(wait=0):                # the NMN claim leaves the other range alone
            assert orphan in networks()
        with claim_nmn(wait=0, network=SECOND_SITE):
            assert nmn_holder(SECOND_SITE) is None
        assert orphan not in networks()
        other = make_mgmt("vcdemo" + new_prefix()[-4:], SECOND_SITE)
        with pytest.raises(RuntimeError, match=rf"needs the range {SECOND_SITE}, held by podman network {other}"):
            with claim_nmn(wait=0, network=SECOND_SITE):
                pass
        assert main() == 1                     # `make test`'s pre-flight checks every test range
    finally:
        podman("network", "rm", orphan, check=False)
        if other:
            podman("network", "rm", other, check=False)
