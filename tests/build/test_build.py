"""The built collection holds only the collection's content, installs, and documents itself."""
import json
import os
import pathlib
import subprocess
import tarfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
# Top-level entries a built hpc.vcluster may contain; anything else leaked from the checkout.
ALLOWED_TOP = {"MANIFEST.json", "FILES.json", "README.md", "galaxy.yml", "meta", "plugins", "roles", "playbooks",
               "inventories", "docs", "changelogs", "examples", "schemas", "requirements.txt", "bindep.txt",
               "CHANGELOG.rst", "LICENSE", "COPYING", "extensions"}
FORBIDDEN_PARTS = {"lab", "tests", "molecule", ".venv", ".collections", ".cache", ".lab", "__pycache__", ".git",
                   ".pytest_cache", "build", "tools", "requirements", ".ci", "ee"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", out, ROOT],
                   check=True, capture_output=True, text=True)
    tarballs = list(out.glob("hpc-vcluster-*.tar.gz"))
    assert len(tarballs) == 1
    return tarballs[0]


def test_tarball_holds_only_collection_content(built):
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert built.name == "hpc-vcluster-%s.tar.gz" % version
    with tarfile.open(built) as tar:
        names = [m.name for m in tar.getmembers()]
    tops = {n.split("/", 1)[0] for n in names}
    assert tops <= ALLOWED_TOP, "unexpected top-level entries: %s" % sorted(tops - ALLOWED_TOP)
    leaked = sorted(n for n in names if FORBIDDEN_PARTS & set(n.split("/")) or n.endswith((".pyc", ".tar.gz")))
    assert not leaked, leaked
    # what must be there
    for required in ("MANIFEST.json", "meta/runtime.yml", "plugins/module_utils/_api.py", "README.md"):
        assert required in names


def test_installed_collection_documents_its_plugins(built, tmp_path):
    dest = tmp_path / "collections"
    config = tmp_path / "ansible.cfg"  # none of the checkout's settings
    config.write_text("[defaults]\n")
    # --force: the checkout itself is installed (as a symlink) in the configured collections path
    subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "--force", "-p", dest,
                    built], check=True, capture_output=True, text=True,
                   env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(dest), ANSIBLE_CONFIG=str(config)))
    installed = dest / "ansible_collections" / "hpc" / "vcluster"
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["namespace"] == "hpc"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(dest), ANSIBLE_CONFIG=str(config))
    expected = {"module": sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("[a-z]*.py")),
                "inventory": sorted(p.stem for p in (ROOT / "plugins" / "inventory").glob("[a-z]*.py"))}
    for kind, names in expected.items():
        listing = subprocess.run([BIN / "ansible-doc", "-t", kind, "-l", "hpc.vcluster", "--json"], env=env,
                                 check=True, capture_output=True, text=True)
        listed = sorted(k.split(".")[-1] for k in json.loads(listing.stdout))
        assert listed == names, "%s plugins listed by ansible-doc differ from the tree" % kind
        for name in names:
            doc = subprocess.run([BIN / "ansible-doc", "-t", kind, "hpc.vcluster." + name, "--json"], env=env,
                                 check=True, capture_output=True, text=True)
            data = json.loads(doc.stdout)["hpc.vcluster." + name]
            assert data["doc"]["short_description"] and data["examples"], name
