"""Lab images against real podman: the base image, recipe builds, provenance, reuse."""
from __future__ import annotations

import json
import os
import stat
import textwrap
import threading

import pytest
from podman_helpers import new_prefix, podman, shared_base, teardown

from vcluster_lab import images

PROVENANCE = ("org.openchami.image.name", "org.openchami.image.type",
              "org.openchami.image.parent", "org.openchami.image.package-manager",
              "org.openchami.image.tags", "org.openchami.image.build-date",
              "org.openchami.image.packages", "io.vcluster.image.recipe-sha256",
              "io.vcluster.image.parent-digest", "io.vcluster.image.builder",
              "io.vcluster.image.build-date")


@pytest.fixture(scope="module")
def prefix():
    prefix = new_prefix()
    try:
        yield prefix
    finally:
        teardown(prefix)


def run_in(ref: str, script: str) -> str:
    """Run a shell script in a throw-away container of ``ref`` (no systemd)."""
    return podman("run", "--rm", "--runtime", "runc", "--ulimit", "host", "--network", "none",
                  "--entrypoint", "/bin/sh", ref, "-c", script).stdout.strip()


def test_base_image_is_a_clean_node_image(prefix):
    first = shared_base()
    again = images.ensure_base(prefix)  # exists (made by any lab): not imported again
    # an import would make a new image id (its labels hold the import's date): the same id proves none
    # happened, where a time limit would fail on a machine busy with other test steps
    assert again.digest == first.digest
    assert first.ref == "localhost/vclab-base:bookworm"
    key = images.rootfs_key()
    tarball = images.cache_dir() / f"rootfs-bookworm-{key}.tar"
    assert tarball.is_file() and stat.S_IMODE(tarball.stat().st_mode) == 0o600
    assert first.labels["io.vcluster.image.recipe-sha256"] == key
    assert first.labels["io.vcluster.lab"] == "1"
    config = json.loads(podman("image", "inspect", first.ref).stdout)[0]["Config"]
    assert config["Cmd"] == ["/sbin/init"]
    out = run_in(first.ref, "ls /etc/ssh | grep -c host_key; wc -c < /etc/machine-id; "
                 "sshd -T -f /etc/ssh/sshd_config 2>/dev/null | grep -i permitrootlogin; "
                 "grep -h ^URIs /etc/apt/sources.list.d/*.sources | head -1; "
                 "for p in python3 sudo ping less ps ip ssh-keygen; do command -v $p >/dev/null "
                 "|| echo missing $p; done; "
                 "readlink /etc/systemd/system/ssh.service.wants/vclab-ssh-keygen.service")
    lines = out.splitlines()
    assert lines[0] == "0", "SSH host keys must not be shared through the image"
    assert lines[1] == "0", "machine-id must be empty in the image"
    assert "missing" not in out
    assert lines[-1] == "../vclab-ssh-keygen.service"
    mirror = images.debian_mirrors()[0]
    assert f"URIs: {mirror}" in out


def test_recipe_build_provenance_and_reuse(prefix, tmp_path):
    (tmp_path / "motd").write_text("welcome to the lab\n")
    recipe_file = tmp_path / "compute.yml"
    recipe_file.write_text(textwrap.dedent(f"""\
        options:
          name: {prefix}-compute
          layer_type: base
          parent: localhost/vclab-base:bookworm
          publish_tags: ["2026.11", latest]
          pkg_manager: apt
        packages: [jq]
        remove_packages: [less]
        cmds:
          - cmd: 'echo built-by-recipe > /etc/vclab-recipe'
        copyfiles:
          - {{src: motd, dest: /etc/motd}}
        """))
    recipe = images.load_recipe(recipe_file)
    built = images.build_recipe(recipe, builder="pytest", prefix=prefix, base_dir=tmp_path)
    assert built.ref == f"localhost/{prefix}-compute:2026.11"
    assert built.digest.startswith("sha256:") and len(built.digest) == 71
    for key in PROVENANCE:
        assert built.labels.get(key), f"label {key} missing"
    labels = built.labels
    assert labels["org.openchami.image.parent"] == "localhost/vclab-base:bookworm"
    assert labels["io.vcluster.image.parent-digest"] == images.image_id(
        "localhost/vclab-base:bookworm")
    assert labels["io.vcluster.image.recipe-sha256"] == images.recipe_sha256(recipe, tmp_path)
    assert labels["org.openchami.image.tags"] == "2026.11,latest"
    assert labels["org.openchami.image.packages"] == "jq"
    assert labels["io.vcluster.image.builder"] == "pytest"
    assert images.image_id(f"localhost/{prefix}-compute:latest") == built.digest
    config = json.loads(podman("image", "inspect", built.ref).stdout)[0]["Config"]
    assert config["Cmd"] == ["/sbin/init"] and not config.get("Entrypoint")
    out = run_in(built.ref, "cat /etc/vclab-recipe /etc/motd; jq --version; "
                 "command -v less || echo no-less; ls /var/lib/apt/lists | wc -l; "
                 "test -e /usr/sbin/policy-rc.d && echo policy-left; ls /etc/ssh | grep -c host_key; true")
    assert out.splitlines() == ["built-by-recipe", "welcome to the lab", out.splitlines()[2],
                                "no-less", "1", "0"]
    assert out.splitlines()[2].startswith("jq-")

    # The same recipe on the same parent: the image already built comes back (the same id: no build ran,
    # which a time limit could not tell on a machine busy with other test steps).
    again = images.build_recipe(recipe, tags=["v2"], builder="someone-else", prefix=prefix,
                                base_dir=tmp_path)
    assert again.digest == built.digest and again.ref == f"localhost/{prefix}-compute:v2"
    assert again.labels["io.vcluster.image.builder"] == "pytest"  # provenance of the build
    # A changed file it copies is a changed recipe.
    (tmp_path / "motd").write_text("changed\n")
    assert images.recipe_sha256(recipe, tmp_path) != labels["io.vcluster.image.recipe-sha256"]
    assert podman("ps", "-a", "--filter", f"name=^{prefix}-build-", "-q").stdout == ""


def test_recipe_errors_are_clear_and_leave_nothing(prefix):
    with pytest.raises(images.ImageError, match="pkg_manager 'dnf' is not supported"):
        images.build_recipe({"options": {"name": "x", "pkg_manager": "dnf"}}, prefix=prefix)
    with pytest.raises(images.ImageError, match="parent image 'registry.example/rocky:9' "
                                                "does not exist"):
        images.build_recipe({"options": {"name": "x", "parent": "registry.example/rocky:9"}},
                            prefix=prefix)
    with pytest.raises(images.ImageError, match="cmds\\[0\\] must be a mapping"):
        images.build_recipe({"options": {"name": "x"}, "cmds": ["echo"]}, prefix=prefix)
    bad = {"options": {"name": f"{prefix}-bad"},
           "cmds": [{"cmd": "echo step-output; exit 3"}]}
    with pytest.raises(images.ImageError, match=r"cmds\[0\] .*exit 3.*step-output"):
        images.build_recipe(bad, tags=["1"], prefix=prefix)
    assert podman("ps", "-a", "--filter", f"name=^{prefix}-build-", "-q").stdout == ""
    assert images.image_id(f"localhost/{prefix}-bad:1") is None


def test_concurrent_callers_debootstrap_once(tmp_path, monkeypatch):
    """Two callers on a cold cache: one runs debootstrap, the other waits for its tarball."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "debootstrap"
    fake.parent.mkdir()
    fake.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" >> {calls}
        sleep 1
        root="$4"
        mkdir -p "$root/etc/apt/sources.list.d" "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/ssh" \\
                 "$root/etc/systemd/system" "$root/root" "$root/usr/share/doc/pkg" \\
                 "$root/var/lib/dbus" "$root/var/cache/apt/archives"
        echo key > "$root/etc/ssh/ssh_host_rsa_key"
        echo doc > "$root/usr/share/doc/pkg/README"
        echo c > "$root/usr/share/doc/pkg/copyright"
        """))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    results, errors = [], []

    def call():
        try:
            results.append(images.rootfs_tarball(packages=("fake-package",)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=call), threading.Thread(target=call)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls.read_text().splitlines()) == 1
    assert results[0] == results[1] and results[0].parent == tmp_path / "cache" / "vcluster-lab"
    listing = podman_free_tar_listing(results[0])
    assert "./etc/ssh/ssh_host_rsa_key" not in listing
    assert "./usr/share/doc/pkg/README" not in listing
    assert "./usr/share/doc/pkg/copyright" in listing
    assert "./etc/systemd/system/vclab-ssh-keygen.service" in listing
    assert not [p for p in results[0].parent.iterdir() if p.name.startswith("rootfs-") and p.is_dir()]


def podman_free_tar_listing(path) -> list[str]:
    import tarfile
    with tarfile.open(path) as tar:
        return tar.getnames()
