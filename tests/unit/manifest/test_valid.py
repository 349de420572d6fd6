"""Valid manifests stay valid (examples, edge cases, Unicode); secrets travel as references only."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.parsing.vault import EncryptedString, VaultLib, VaultSecret, VaultSecretsContext

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import (
    check_manifest, digest, read_manifest, site_policy)
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import ManifestError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
VALID = sorted((HERE / "valid").glob("*.yml")) + sorted((ROOT / "examples" / "vclusters").glob("*.yml"))
DBPASS = "db-Pa55-w0rd-unit"


@pytest.fixture(autouse=True)
def dbpass(monkeypatch):
    monkeypatch.setenv("VCLUSTER_SECRET_TEST_DBPASS", DBPASS)
    # the secrets examples/vclusters/users.yml refers to (an operator's environment sets them)
    monkeypatch.setenv("VCLUSTER_SECRET_EIGER_DBPASS", DBPASS)
    monkeypatch.setenv("VCLUSTER_SECRET_FIRECREST_EIGER", "client-secret-of-the-example")
    monkeypatch.setenv("VCLUSTER_SECRET_FIRECREST_SSH_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nexample\n"
                       "-----END OPENSSH PRIVATE KEY-----\n")
    # ... and those of examples/vclusters/stack.yml (tests/integration/conftest.py sets them)
    monkeypatch.setenv("VCLUSTER_SECRET_STACK_FIRECREST_CLIENT", "client-secret-of-the-stack")
    monkeypatch.setenv("VCLUSTER_SECRET_STACK_FIRECREST_SSH_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nexample\n"
                       "-----END OPENSSH PRIVATE KEY-----\n")


def checked(path, policy=None):
    data, source, base_dir = read_manifest(str(path))
    return check_manifest(data, source, base_dir, policy, fetch=False)


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_manifest_is_accepted(path):
    out = checked(path)
    assert out["name"] and out["vservices"] is not None


def test_unicode_and_newlines_in_the_description():
    out = checked(HERE / "valid" / "unicode.yml")
    assert "🏔️" in out["description"] and "\n\t" in out["description"] and out["image"]["tag"] == "2026-11-01"


def test_secrets_are_checked_but_only_references_come_out():
    out = checked(HERE / "valid" / "secrets.yml")
    text = json.dumps(out)
    key = (HERE / "valid" / "munge.key.b64").read_text().strip()
    assert key not in text and DBPASS not in text
    slurm = out["vservices"][0]
    assert slurm["vars"]["slurm_munge_key_b64"] == {"secret": {"file": str(HERE / "valid" / "munge.key.b64")}}
    assert slurm["vars"]["slurm_dbd_storage_pass"] == {"secret": {"env": "VCLUSTER_SECRET_TEST_DBPASS"}}


def test_a_secret_changed_where_it_is_kept_changes_the_digest(monkeypatch):
    """The manifest holds only references: the digest (releases, the fast re-run) must still see a new secret."""
    def digest_of():
        data, source, base_dir = read_manifest(str(HERE / "valid" / "secrets.yml"))
        resolved = []
        check_manifest(data, source, base_dir, fetch=False, resolved=resolved)
        assert sorted(field for field, _value in resolved) == [
            "vservices[0].config.dbd_storage_pass", "vservices[0].config.munge_key_b64"]
        return digest(data, resolved)
    first = digest_of()
    assert digest_of() == first
    monkeypatch.setenv("VCLUSTER_SECRET_TEST_DBPASS", DBPASS + "-rotated")
    assert digest_of() != first


def test_a_bad_secret_is_named_never_quoted(tmp_path, monkeypatch):
    monkeypatch.setenv("VCLUSTER_SECRET_TEST_DBPASS", "has space'and quote-SECRETVALUE")
    (tmp_path / "m.yml").write_text((HERE / "valid" / "secrets.yml").read_text())
    (tmp_path / "munge.key.b64").write_text("c2hvcnQtU0VDUkVUVkFMVUU=\n")
    with pytest.raises(ManifestError) as err:
        checked(tmp_path / "m.yml")
    text = str(err.value)
    assert "SECRETVALUE" not in text and "c2hvcnQtU0VDUkVUVkFMVUU" not in text
    assert "vservices[0].config.dbd_storage_pass: a database password without quotes" in text
    assert "vservices[0].config.munge_key_b64: the base64 encoding of a munge key of at least 32 bytes" in text


def test_missing_secret_is_named(monkeypatch):
    monkeypatch.delenv("VCLUSTER_SECRET_TEST_DBPASS")
    with pytest.raises(ManifestError) as err:
        checked(HERE / "valid" / "secrets.yml")
    assert err.value.errors == ["vservices[0].config.dbd_storage_pass: secret.env: VCLUSTER_SECRET_TEST_DBPASS is not "
                                "set on the controller"]


def test_vault_values_in_file_and_data_stay_encrypted(tmp_path, monkeypatch):
    secrets = [("default", VaultSecret(b"unit-vault-password"))]
    monkeypatch.setattr(VaultSecretsContext, "_current", VaultSecretsContext(secrets))
    cipher = VaultLib(secrets).encrypt("vaulted-db-pass").decode()
    text = (HERE / "valid" / "secrets.yml").read_text().replace(
        "{secret: {env: VCLUSTER_SECRET_TEST_DBPASS}}", "!vault |\n        " + cipher.replace("\n", "\n        "))
    (tmp_path / "m.yml").write_text(text)
    (tmp_path / "munge.key.b64").write_text((HERE / "valid" / "munge.key.b64").read_text())
    out = checked(tmp_path / "m.yml")
    assert out["vservices"][0]["vars"]["slurm_dbd_storage_pass"] == {"secret": {"vault": cipher.strip()}}
    assert "vaulted-db-pass" not in json.dumps(out)
    # the same manifest as data from a vars file: Ansible hands an EncryptedString over
    data, _source, _base = read_manifest(str(tmp_path / "m.yml"))
    data["vservices"][0]["config"]["dbd_storage_pass"] = EncryptedString(ciphertext=cipher)
    data["vservices"][0]["config"]["munge_key_b64"] = {"secret": {"file": str(tmp_path / "munge.key.b64")}}
    copied, _source, _base = read_manifest(manifest=data)
    out = check_manifest(copied, "manifest", str(tmp_path), fetch=False)
    assert out["vservices"][0]["vars"]["slurm_dbd_storage_pass"] == {"secret": {"vault": cipher}}
    # a vaulted value that does not pass the role's contract is named, not shown
    bad = VaultLib(secrets).encrypt("bad pass'word").decode()
    data["vservices"][0]["config"]["dbd_storage_pass"] = EncryptedString(ciphertext=bad)
    copied, _source, _base = read_manifest(manifest=data)
    with pytest.raises(ManifestError) as err:
        check_manifest(copied, "manifest", str(tmp_path), fetch=False)
    assert "bad pass" not in str(err.value) and "dbd_storage_pass: a database password" in str(err.value)


def test_site_policy_from_the_environment(monkeypatch):
    monkeypatch.setenv("VCLUSTER_MANIFEST_GIT_SCHEMES", "HTTPS, file")
    monkeypatch.setenv("VCLUSTER_MANIFEST_RESERVED_VLANS", "2,4")
    monkeypatch.setenv("VCLUSTER_MANIFEST_SECRET_DIRS", "/a:/b")
    policy = site_policy({"secret_lookups": ["community.hashi_vault.hashi_vault"]})
    assert policy["git_schemes"] == ["https", "file"] and policy["reserved_vlans"] == [2, 4]
    assert policy["secret_dirs"] == ["/a", "/b"] and policy["secret_lookups"] == ["community.hashi_vault.hashi_vault"]
    assert policy["secret_env_prefix"] == "VCLUSTER_SECRET_"


def test_reserved_vlans_and_lookup_policy(tmp_path):
    (tmp_path / "m.yml").write_text("name: v\nnodes: {c: {count: 1, select: {role: Compute}}}\n"
                                    "image: {name: a, tag: b}\nnetwork: {vlan: 2}\n")
    with pytest.raises(ManifestError, match=r"network.vlan: 2 is reserved by this site \(2, 4\)"):
        checked(tmp_path / "m.yml", {"reserved_vlans": [2, 4]})
    assert checked(tmp_path / "m.yml", {"reserved_vlans": [4]})["network"] == {"vlan": 2}
