"""Session fixtures of the integration tests: one real lab for the whole session (see vc_lab.py)."""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import pytest

from vc_lab import NODES, Lab, free_port, podman
from vcluster_lab.nmn_claim import SECOND_SITE, claim_nmn


def _build_containers() -> set[str]:
    """The image module's build containers on this machine (``vcbuild-*``, labelled io.vcluster.build)."""
    out = podman("ps", "-a", "--format", "{{.ID}} {{.Names}}", "--filter", "label=io.vcluster.build", check=False)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _lab_left_nothing(instance: Lab, down, builds_before: set[str]) -> None:
    """The lab's containers are gone, and so are the build containers this session's runs made.

    Other checkouts on the machine may be building images at the same time (their containers
    carry the same label): build containers that existed before the session are not this
    session's; new ones get two minutes to finish before they count as left behind."""
    left = podman("ps", "-a", "--format", "{{.Names}}", "--filter", f"name=^{instance.prefix}-", check=False)
    assert down.returncode == 0, down.stderr
    assert not left.stdout.strip(), f"the lab left containers behind: {left.stdout}"
    deadline = time.monotonic() + 120
    while (builds := _build_containers() - builds_before) and time.monotonic() < deadline:
        time.sleep(5)
    assert not builds, f"image builds left containers behind: {sorted(builds)}"


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    reuse = os.environ.get("VCLUSTER_TEST_LAB_HOME")
    if reuse:
        home = Path(reuse)
        state = json.loads((home / "lab.json").read_text()) if (home / "lab.json").exists() else {}
        instance = Lab(home, state.get("prefix") or os.environ.get("VCLUSTER_LAB_PREFIX", "vclab"),
                       int(state.get("port") or 28443))
        instance.run("status")
        yield instance
        return
    home = tmp_path_factory.mktemp("lab") / "home"
    instance = Lab(home, "vcmt" + secrets.token_hex(3), free_port())
    builds_before = _build_containers()
    with claim_nmn():
        try:
            instance.run("up", "--nodes", str(NODES), "--service-nodes", "1", "--port", str(instance.port))
            yield instance
        finally:
            down = instance.run("down", check=False)
    _lab_left_nothing(instance, down, builds_before)


@pytest.fixture(scope="session")
def second_site(lab, tmp_path_factory):
    """A second lab site on this machine, beside ``lab``: its own home, prefix, port, site name and
    management network (SECOND_SITE, 10.251.0.0/16), one compute node. Its range is claimed under the
    lock ``lab`` holds (the claim nests), and it goes down before ``lab`` does."""
    home = tmp_path_factory.mktemp("site-b") / "home"
    instance = Lab(home, "vcmt" + secrets.token_hex(3), free_port())
    builds_before = _build_containers()
    with claim_nmn(network=SECOND_SITE):
        try:
            instance.run("up", "--nodes", "1", "--service-nodes", "0", "--port", str(instance.port),
                         "--mgmt-network", str(SECOND_SITE), "--site-name", "site-b")
            yield instance
        finally:
            down = instance.run("down", check=False)
    _lab_left_nothing(instance, down, builds_before)
