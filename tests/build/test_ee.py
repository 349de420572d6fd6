"""The execution environment's build context, checked without a registry.

``ansible-builder create`` turns ee/execution-environment.yml into a build context (a
Containerfile and ``_build/``). Building the image needs its base image from a registry,
which these machines cannot reach, so this test does by hand what the Containerfile's
stages would do with the context, on this machine: install the collections of
``_build/requirements.yml`` (the galaxy stage), run the context's own introspection script
over them (the builder stage: it collects the collections' Python and system
requirements), resolve the system packages for the image's platform with bindep, and
install the Python requirements plus the pinned ansible-core and ansible-runner into a
clean venv, where the collection must load and document itself.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from bindep.depends import Depends

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"

# what the image's package manager installs from bindep.txt on an RPM base (default profile)
EE_SYSTEM_PACKAGES = {"openssh-clients", "podman", "git", "ca-certificates"}
RPM_PLATFORM = ["platform:rpm", "platform:redhat", "platform:centos", "platform:centos-9"]


def dev_pins() -> dict:
    pins = {}
    for line in (ROOT / "requirements" / "dev.in").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"\[.*\]", "", name).strip().lower()] = version.strip()
    return pins


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """`ansible-builder create` on a copy of ee/, with the collection built as `make ee-context` builds it."""
    work = tmp_path_factory.mktemp("ee")
    shutil.copytree(ROOT / "ee", work / "ee")
    (work / "build" / "ee").mkdir(parents=True)
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", work / "build" / "ee", ROOT],
                   check=True, capture_output=True, text=True)
    next((work / "build" / "ee").glob("hpc-vcluster-*.tar.gz")).rename(work / "build" / "ee" / "hpc-vcluster.tar.gz")
    proc = subprocess.run([BIN / "ansible-builder", "create", "-f", work / "ee" / "execution-environment.yml",
                           "-c", work / "context"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work / "context"


def test_context_pins_the_tested_controller(context):
    containerfile = (context / "Containerfile").read_text()
    pins = dev_pins()
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1).split()
    assert sorted(refs) == sorted([f"ansible-core=={pins['ansible-core']}", f"ansible-runner=={pins['ansible-runner']}"])
    assert re.search(r'^ARG PYCMD="/usr/bin/python3\.11"$', containerfile, re.M)
    # the galaxy stage installs from /build, where the context's _build/ is copied
    assert "COPY _build /build" in containerfile
    wanted = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    tested = yaml.safe_load((ROOT / "requirements" / "collections.yml").read_text())["collections"]
    versions = {c["name"]: c["version"] for c in tested}
    for entry in wanted:
        if entry.get("type") == "file":
            assert entry["name"].startswith("/build/")
            assert (context / "_build" / entry["name"][len("/build/"):]).is_file(), entry
        else:
            assert entry["version"] == versions[entry["name"]], entry


def test_collection_and_its_requirements_install_from_the_context(context, tmp_path):
    # galaxy stage: the collection from the context's tarball (no Galaxy here: the other
    # collections of requirements.yml are taken, at the same versions, from .collections)
    collections = tmp_path / "usr-share-ansible-collections"
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_COLLECTIONS_PATH=str(collections))
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    for entry in requirements:
        if entry.get("type") == "file":
            tarball = context / "_build" / entry["name"][len("/build/"):]
            subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", collections,
                            tarball], check=True, capture_output=True, text=True, env=env)
        else:
            ns, name = entry["name"].split(".")
            shutil.copytree(ROOT / ".collections" / "ansible_collections" / ns / name,
                            collections / "ansible_collections" / ns / name)
    installed = collections / "ansible_collections" / "hpc" / "vcluster"
    assert json.loads((installed / "MANIFEST.json").read_text())["collection_info"]["name"] == "vcluster"

    # builder stage: the context's own introspection script over the installed collections
    pip_out, bindep_out = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    subprocess.run([sys.executable, context / "_build" / "scripts" / "introspect.py", "introspect",
                    f"--write-pip={pip_out}", f"--write-bindep={bindep_out}", collections],
                   check=True, capture_output=True, text=True)
    ours = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    found = [line.split("#")[0].strip() for line in pip_out.read_text().splitlines()]
    # ansible-builder leaves out what the image has anyway (PyYAML comes with ansible-core)
    assert {r for r in ours if r and not r.lower().startswith("pyyaml")} <= {r for r in found if r}, pip_out.read_text()

    # system packages: the image installs the profile-less entries, never the lab's (`test` profile)
    introspected = bindep_out.read_text()
    ours_only = "\n".join(line for line in introspected.splitlines() if "from collection hpc.vcluster" in line)
    rules = Depends(ours_only + "\n")
    assert {rule[0] for rule in rules.active_rules(["default"] + RPM_PLATFORM)} == EE_SYSTEM_PACKAGES, introspected
    lab_host = {rule[0] for rule in rules.active_rules(["test", "platform:dpkg", "platform:debian"])}
    assert {"runc", "netavark", "debootstrap", "openssh-client", "git"} <= lab_host
    every = Depends(introspected + "\n")
    image = {rule[0] for rule in every.active_rules(["default"] + RPM_PLATFORM)}
    assert not image & (lab_host - EE_SYSTEM_PACKAGES - {"openssh-client"}), image

    # final stage: the Python requirements and the pinned ansible in a clean venv
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', (context / "Containerfile").read_text(), re.M).group(1)
    proc = subprocess.run([venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check",
                           "-r", pip_out, *refs.split()], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = subprocess.run([venv / "bin" / "pip", "check"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    # the collection loads in it: a module's documentation, and a module_util importing its libraries
    doc = subprocess.run([venv / "bin" / "ansible-doc", "--json", "hpc.vcluster.node_group"], env=env,
                         capture_output=True, text=True, check=False)
    assert doc.returncode == 0, doc.stderr
    assert json.loads(doc.stdout)["hpc.vcluster.node_group"]["doc"]["short_description"]
    imports = subprocess.run([venv / "bin" / "python", "-c",
                              "import ansible_collections.hpc.vcluster.plugins.module_utils._manifest, "
                              "ansible_collections.hpc.vcluster.plugins.module_utils._api as api; "
                              "assert api.HAS_REQUESTS; import hostlist, jsonschema, yaml"],
                             env=dict(env, PYTHONPATH=str(collections)), capture_output=True, text=True, check=False)
    assert imports.returncode == 0, imports.stderr
