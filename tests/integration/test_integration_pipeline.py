"""hpc.vcluster.integration on the demo manifest (issue 13): a temporary copy deployed, checked, destroyed.

One run with a node validator configuration that breaks a check (a device the nodes do not have):
it fails, names the failing check, and leaves nothing on the site. A copy left behind (as an
interrupted run leaves it: its label with a node) is destroyed by the next run, which passes on the
demo manifest and also leaves nothing: no label, no boot parameters, no node on. Both write JUnit
XML and JSON results. --check --diff shows the copy and changes nothing.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from vc_lab import ROOT, debug_messages, failed_messages, lab_nodes, playbook, run_site_playbook, site_play

DEMO = ROOT / "examples" / "vclusters" / "demo.yml"
COPY = "demo_it"
#: the site repository of the lab (NHC) and its Python index (ReFrame), what a site's mirror would be
VALIDATOR = {"apt_repository": {"uris": ["http://10.252.0.2/debian"],
                                "signed_by": "http://10.252.0.2/debian/archive-key.asc"},
             "reframe_index_url": "http://10.252.0.2/simple/"}


def integration(lab, tmp_path: Path, report: Path, validator: dict, check: bool = False) -> dict:
    return run_site_playbook(lab, "openchami", "integration", tmp_path, check=check, diff=check, extra_vars={
        "vcluster_manifest": str(DEMO), "vcluster_integration_vlan": 211,
        "vcluster_integration_validator_config": validator, "vcluster_integration_report_dir": str(report)})


def labels(lab) -> list[str]:
    reply = lab.session().get(lab.url + "/hsm/v2/groups", timeout=30)
    reply.raise_for_status()
    return [g["label"] for g in reply.json()]


def boot_params(lab, xname: str) -> list:
    reply = lab.session().get(lab.url + "/boot/v1/bootparameters", params={"name": xname}, timeout=30)
    if reply.status_code == 404:
        return []
    reply.raise_for_status()
    return [e for e in reply.json() or [] if xname in (e.get("hosts") or [])]


def assert_nothing_left(lab, nodes: list[str]) -> None:
    assert COPY not in labels(lab)
    state = lab_nodes(lab)
    for xname in nodes:
        assert boot_params(lab, xname) == [], f"{xname} kept boot parameters"
        assert state[xname]["power"] == "off", f"{xname} is {state[xname]['power']}"


def junit(report: Path) -> ET.Element:
    root = ET.parse(report / "junit.xml").getroot()
    assert root.tag == "testsuites"
    return root


def test_integration_pipeline(lab, tmp_path):
    # --check --diff: the copy and the deploy's plan, nothing changes
    before = labels(lab)
    checked = integration(lab, tmp_path, tmp_path / "check", VALIDATOR, check=True)
    assert checked["rc"] == 0, failed_messages(checked)
    said = debug_messages(checked, "Integration | what this run does")
    assert "demo_it" in said and '"vlan": 211' in said.replace('\\"', '"'), said
    assert labels(lab) == before

    # a check that fails: the node validator watches a device the nodes do not have
    broken = integration(lab, tmp_path, tmp_path / "broken", dict(VALIDATOR, devices=["/dev/vcluster-it-missing"]))
    assert broken["rc"] != 0
    message = " ".join(failed_messages(broken))
    assert "NodeHealth" in message and "validate" in message, message
    results = json.loads((tmp_path / "broken" / "results.json").read_text())
    assert not results["passed"] and len(results["nodes"]) == 2, results
    by_name = {(c["classname"].split(".")[-1], c["name"]): c["result"] for c in results["cases"]}
    assert by_name[(COPY, "deploy")] == "pass" and by_name[(COPY, "validate")] == "fail"
    assert by_name[(COPY, "destroy")] == "pass" and by_name[(COPY, "nothing-left")] == "pass", results["cases"]
    # the check's failure carries NHC's own words: which check, on what
    health = [c for c in results["cases"] if c["name"] == "NodeHealth" and c["result"] == "fail"]
    assert health and "/dev/vcluster-it-missing" in health[0]["message"], results["cases"]
    root = junit(tmp_path / "broken")
    assert int(root.get("failures")) >= 2, ET.tostring(root)[:2000]
    assert_nothing_left(lab, results["nodes"])

    # a leftover, as an interrupted run leaves it (its label, a node in it)
    free = sorted(x for x, n in lab_nodes(lab).items() if x.startswith("x1000") and n["power"] == "off")[:1]
    assert free, lab_nodes(lab)
    made = playbook(lab, "openchami", site_play(f"""
- name: a copy an interrupted run left
  hpc.vcluster.node_group:
    label: {COPY}
    members: {free}
"""))
    assert made["rc"] == 0, failed_messages(made)

    passed = integration(lab, tmp_path, tmp_path / "demo", VALIDATOR)
    assert passed["rc"] == 0, failed_messages(passed)
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["passed"] and len(results["nodes"]) == 2, results
    names = [c["name"] for c in results["cases"]]
    assert names[:4] == ["leftover-destroy", "deploy", "validate", "destroy"], names
    checks = {c["name"] for c in results["cases"] if c["classname"] != COPY}
    assert {"NodeHealth", "SlurmNodeRunsJobStep"} <= checks, checks
    root = junit(tmp_path / "demo")
    assert root.get("failures") == "0" and int(root.get("tests")) == len(results["cases"])
    assert_nothing_left(lab, results["nodes"] + free)
    for step in ("deploy", "validate", "destroy", "leftover-destroy"):
        assert (tmp_path / "demo" / f"{step}.log").stat().st_size > 0
