"""Site services: declarations, the repository's sources, and a real service container.

The declarations are checked without podman (a bad name or address is refused with a
message naming it). The sources are verified against their pins over real files and a
real HTTP server (a mirror given as a URL). The repository service then runs for real,
from its cached image, on a private network (10.246.0.0/16, not the NMN the lab's own
addresses are in, so no claim is needed): nginx serves the verified archives, a second
start keeps the running container, and ``remove_lab`` (what ``down`` and the orphan
reclaim call) removes it.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.server
import ipaddress
import subprocess
import threading
from pathlib import Path

import pytest
import requests
import yaml
from podman_helpers import leftovers, new_prefix, podman, shared_base, teardown

from vcluster_lab import site_repo, site_services
from vcluster_lab.containers import podman_env
from vcluster_lab.nodes.podman import PodmanDriver, remove_lab
from vcluster_lab.site_services import ServiceContext, SiteService, SiteServiceError

TEST_SUBNET = "10.246.0.0/16"


# ------------------------------------------------------------------ declarations
def test_catalogue_has_the_repository_at_its_fixed_address():
    known = site_services.catalogue()
    assert known["repo"].address == "10.252.0.2"
    assert known["repo"].url_values()["URL"] == "http://10.252.0.2/"
    assert [s.name for s in site_services.select("none")] == []
    assert [s.name for s in site_services.select("repo")] == ["repo"]
    with pytest.raises(SiteServiceError, match="unknown site service.*nosuch.*the lab has repo"):
        site_services.select("repo,nosuch")


@pytest.mark.parametrize("change, message", [
    ({"name": "Repo"}, "name must be lower-case"),
    ({"address": "10.252.0.10"}, "outside 10.252.0.2-10.252.0.9"),
    ({"address": "somewhere"}, "is not an IPv4 address"),
    ({"urls": {"url": "http://{address}/"}}, "url key 'url' must be upper case"),
])
def test_bad_declarations_are_refused_by_name(change, message):
    good = SiteService(name="dir", address="10.252.0.3", description="d", recipe={})
    good.check()
    with pytest.raises(SiteServiceError, match=message):
        dataclasses.replace(good, **change).check()


def test_secrets_are_made_once_and_kept_private(tmp_path):
    service = SiteService(name="dir", address="10.252.0.3", description="d", recipe={}, secrets=("admin",))
    ctx = ServiceContext(service, tmp_path, "vclabt0")
    first = ctx.secret("admin")
    assert len(first) >= 24 and ServiceContext(service, tmp_path, "vclabt0").secret("admin") == first
    assert (tmp_path / "site.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(SiteServiceError, match="secret 'other' is not declared"):
        ctx.secret("other")


# ------------------------------------------------------------------ sources
def _pins(files: dict[str, bytes]) -> dict[str, site_repo.Source]:
    return {name: site_repo.Source(name, hashlib.sha256(data).hexdigest(), f"https://example.invalid/{name}")
            for name, data in files.items()}


def test_sources_from_a_directory_are_verified(tmp_path, monkeypatch):
    files = {"a-1.0.tar.gz": b"alpha", "b-2.0.tar.gz": b"beta"}
    pins = _pins(files)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, data in files.items():
        (mirror / name).write_bytes(data)
    monkeypatch.setenv("VCLUSTER_LAB_SOURCES", str(mirror))
    got = site_repo.fetch_sources(tmp_path / "out", pins=pins)
    assert {n: p.read_bytes() for n, p in got.items()} == files

    (mirror / "b-2.0.tar.gz").write_bytes(b"tampered")
    (mirror / "a-1.0.tar.gz").unlink()
    with pytest.raises(site_repo.RepoError) as err:
        site_repo.fetch_sources(tmp_path / "fresh", pins=pins)
    text = str(err.value)
    assert f"{mirror}/a-1.0.tar.gz is missing (expected sha256 {pins['a-1.0.tar.gz'].sha256}" in text
    assert f"{mirror}/b-2.0.tar.gz is corrupt: sha256 {hashlib.sha256(b'tampered').hexdigest()}, " \
           f"expected {pins['b-2.0.tar.gz'].sha256}" in text
    assert "\n" not in text

    (mirror / "SHA256SUMS").write_text(f"{'0' * 64}  a-1.0.tar.gz\n")
    (mirror / "a-1.0.tar.gz").write_bytes(b"alpha")
    with pytest.raises(site_repo.RepoError, match=f"SHA256SUMS gives a-1.0.tar.gz sha256 {'0' * 64}"):
        site_repo.fetch_sources(tmp_path / "fresh", wanted=["a-1.0.tar.gz"], pins=pins)


def test_sources_from_a_mirror_url_over_http(tmp_path, monkeypatch):
    files = {"c-3.0.tar.gz": b"gamma" * 1000}
    served = tmp_path / "served"
    served.mkdir()
    (served / "c-3.0.tar.gz").write_bytes(files["c-3.0.tar.gz"])

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("VCLUSTER_LAB_SOURCES", f"http://127.0.0.1:{server.server_port}/")
        got = site_repo.fetch_sources(tmp_path / "out", pins=_pins(files))
        assert got["c-3.0.tar.gz"].read_bytes() == files["c-3.0.tar.gz"]
        (served / "c-3.0.tar.gz").write_bytes(b"short")
        with pytest.raises(site_repo.RepoError, match="c-3.0.tar.gz from http://127.0.0.1:.* is corrupt"):
            site_repo.fetch_sources(tmp_path / "again", pins=_pins(files))
        assert not (tmp_path / "again" / "c-3.0.tar.gz").exists()
    finally:
        server.shutdown()


def test_sources_variable_must_name_a_directory_or_url(monkeypatch, tmp_path):
    monkeypatch.setenv("VCLUSTER_LAB_SOURCES", str(tmp_path / "nowhere"))
    with pytest.raises(site_repo.RepoError, match="VCLUSTER_LAB_SOURCES=.*nowhere: not a directory"):
        site_repo.sources_origin()


def test_the_pins_agree_with_the_shared_mirror():
    kind, where = site_repo.sources_origin()
    sums = site_repo._mirror_sums(Path(where)) if kind == "dir" else {}  # pylint: disable=protected-access
    if not sums:
        pytest.fail("these tests run where ../shared/sources (or VCLUSTER_LAB_SOURCES) is a mirror with SHA256SUMS")
    pins = site_repo.pinned_sources()
    assert {n: s.sha256 for n, s in pins.items()} == {n: sums[n] for n in pins}


# ------------------------------------------------------------------ package recipes, control files, Python index
def test_the_recipes_load_and_pyxis_names_its_slurm():
    recipes = site_repo.load_recipes()
    assert {"enroot", "pyxis", "nhc"} <= set(recipes)
    assert recipes["pyxis"]["revision"] == "1+slurm{slurm}" and "slurm" in recipes["pyxis"]["facts"]
    builder = site_repo.builder_recipe(recipes)["packages"]
    assert {"libslurm-dev", "musl-tools", "dpkg-dev"} <= set(builder)


@pytest.mark.parametrize("spoil, message", [
    (lambda r: r.pop("build"), "build: missing"),
    (lambda r: r.update(source="nosuch-1.0.tar.gz"), "source: 'nosuch-1.0.tar.gz' is not pinned"),
    (lambda r: r.update(colour="blue"), "colour: unknown key"),
    (lambda r: r["packages"].update({"Bad_Name": {"description": "x"}}), "packages.Bad_Name: not a Debian package name"),
    (lambda r: r["packages"]["lbnl-nhc"].pop("description"), "packages.lbnl-nhc.description: missing"),
    (lambda r: r["packages"]["lbnl-nhc"].update(architecture="arm64"), "architecture: any or all"),
    (lambda r: r.update(build_depends=["ok", "not ok"]), "build_depends: expected a list of Debian package names"),
])
def test_bad_recipes_are_refused_naming_the_file_and_field(spoil, message):
    recipe = site_repo.load_recipes()["nhc"]
    recipe = {**recipe, "packages": {k: dict(v) for k, v in recipe["packages"].items()}}
    spoil(recipe)
    with pytest.raises(site_repo.RepoError, match="package recipe nhc.yml: .*" + message.replace("(", r"\(")):
        site_repo.check_recipe(Path("nhc.yml"), recipe, site_repo.pinned_sources())


def test_control_file_substitutes_facts_and_folds_the_description():
    fields = {"architecture": "any", "section": "admin", "depends": ["x (>= {slurm})", "x (<< {slurm}+)"],
              "description": "Summary for {slurm}\n Long line.\n\n Second paragraph."}
    text = site_repo.control_file("p", fields, {"version": "1.0-1+slurm22.05.8", "slurm": "22.05.8"}, "amd64",
                                  12, "https://github.com/o/p")
    assert "Version: 1.0-1+slurm22.05.8\n" in text
    assert "Depends: x (>= 22.05.8), x (<< 22.05.8+)\n" in text
    assert text.endswith("Description: Summary for 22.05.8\n Long line.\n .\n Second paragraph.\n")


def test_an_image_checksum_file_always_describes_the_image_beside_it(tmp_path):
    # two builds of one image raced once (SquashFS is not byte-reproducible): the checksum file of one build stayed
    # beside the other's image, and every later start served the pair as it was; now it is rewritten to match
    image, sums = tmp_path / "img.sqsh", tmp_path / "img.sha256"
    image.write_bytes(b"first build")
    site_repo._write_sums(sums, [("img.sqsh", image)])  # pylint: disable=protected-access
    assert sums.read_text() == f"{hashlib.sha256(b'first build').hexdigest()}  img.sqsh\n"
    image.write_bytes(b"second build")
    before = sums.stat().st_ino
    site_repo._write_sums(sums, [("img.sqsh", image)])  # pylint: disable=protected-access
    assert sums.read_text() == f"{hashlib.sha256(b'second build').hexdigest()}  img.sqsh\n"
    assert sums.stat().st_ino != before, "replaced, not rewritten in place (the served tree links the old file)"
    unchanged = sums.stat().st_ino
    site_repo._write_sums(sums, [("img.sqsh", image)])  # pylint: disable=protected-access
    assert sums.stat().st_ino == unchanged and not list(tmp_path.glob("*.part"))


def test_build_key_follows_the_source_checksum_and_the_recipe():
    recipe = site_repo.load_recipes()["nhc"]
    pin = site_repo.pinned_sources()[recipe["source"]]
    key = site_repo.build_key(recipe, pin)
    assert site_repo.build_key(recipe, pin) == key
    assert site_repo.build_key(recipe, dataclasses.replace(pin, sha256="0" * 64)) != key
    assert site_repo.build_key({**recipe, "revision": "2"}, pin) != key


def test_uenv_recipe_names_its_extra_sources_and_build_tools_and_they_key_the_build():
    recipes = site_repo.load_recipes()
    uenv = recipes["uenv"]
    assert set(uenv["sources"]) == {"fmt-11.0.1.tar.gz", "CLI11-2.4.1.tar.gz", "spdlog-1.13.0.tar.gz"}
    assert uenv["python"] == ["meson-1.5.2-py3-none-any.whl"]
    assert uenv["python"][0] in site_repo.python_pins()
    assert uenv["revision"] == "1+slurm{slurm}" and "slurm" in uenv["facts"]
    assert set(uenv["packages"]) == {"uenv", "uenv-slurm-plugin"} and "squashfs-mount" in recipes
    pin = site_repo.pinned_sources()[uenv["source"]]
    key = site_repo.build_key(uenv, pin, {"fmt-11.0.1.tar.gz": "a" * 64})
    assert site_repo.build_key(uenv, pin, {"fmt-11.0.1.tar.gz": "b" * 64}) != key
    # a recipe without extras keeps the key it had (no rebuild of the cached packages)
    nhc = recipes["nhc"]
    assert site_repo.build_key(nhc, site_repo.pinned_sources()[nhc["source"]], {}) == \
        site_repo.build_key(nhc, site_repo.pinned_sources()[nhc["source"]])


@pytest.mark.parametrize("spoil, message", [
    (lambda r: r.update(sources=["nosuch-1.0.tar.gz"]), "sources: 'nosuch-1.0.tar.gz' is not pinned"),
    (lambda r: r.update(sources="fmt-11.0.1.tar.gz"), "sources: expected a list"),
    (lambda r: r.update(python=["../x.whl"]), "python: expected a list of distribution file names"),
])
def test_bad_extra_sources_are_refused(spoil, message):
    recipe = dict(site_repo.load_recipes()["nhc"])
    spoil(recipe)
    with pytest.raises(site_repo.RepoError, match="package recipe nhc.yml: " + message):
        site_repo.check_recipe(Path("nhc.yml"), recipe, site_repo.pinned_sources())


def test_the_uenv_image_is_declared_and_bad_ones_are_refused(tmp_path):
    specs = site_repo.image_specs()
    hello = specs["uenv-hello"]
    assert hello["kind"] == "uenv" and hello["mount"] == "/user-environment"
    assert "bin/uenv-hello" in hello["files"]
    for spec, message in (({"mount": "rel"}, "uenv-hello.mount"),
                          ({"files": {"../x": "y"}}, r"uenv-hello.files.../x"),
                          ({"files": {}}, "uenv-hello.files: a mapping")):
        path = tmp_path / "images.yml"
        path.write_text(yaml.safe_dump({"uenv-hello": {**hello, **spec}}))
        with pytest.raises(site_repo.RepoError, match=message):
            site_repo.image_specs(path)


def test_only_the_nodes_the_setting_names_get_sys_admin_and_loop_devices(monkeypatch):
    from vcluster_lab.nodes import podman as driver  # pylint: disable=import-outside-toplevel
    monkeypatch.setenv(driver.UENV_NODES_ENV, "x1000c0s4b0n0, x1000c0s5*")
    capable = driver.node_devices(5, "x1000c0s4b0n0")
    assert capable[capable.index("--cap-add") + 1] == "SYS_ADMIN" and capable.count("--cap-add") == 1
    if Path("/dev/loop0").exists():
        assert "/dev/loop0" in capable and "/dev/loop-control" in capable
    assert driver.uenv_capable("x1000c0s5b0n0") and not driver.uenv_capable("x1000c0s6b0n0")
    for other in (driver.node_devices(1, "x1000c0s0b0n0"), driver.node_devices(100001, "x3000c0s0b0n0")):
        assert "--cap-add" not in other and not any("loop" in a for a in other)
    assert "--privileged" not in capable
    monkeypatch.delenv(driver.UENV_NODES_ENV)
    assert "--cap-add" not in driver.node_devices(5, "x1000c0s4b0n0")


def test_python_index_is_what_pip_reads(tmp_path):
    import subprocess
    import sys
    import zipfile
    files = tmp_path / "python"
    files.mkdir()
    wheel = files / "Vc_Probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("vc_probe/__init__.py", "VALUE = 1\n")
        zf.writestr("vc_probe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: vc-probe\nVersion: 1.0\n")
        zf.writestr("vc_probe-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                    "Tag: py3-none-any\n")
        zf.writestr("vc_probe-1.0.dist-info/RECORD", "")
    site_repo.python_index([wheel], tmp_path / "simple")
    page = (tmp_path / "simple" / "vc-probe" / "index.html").read_text()
    assert f"#sha256={site_repo.sha256_file(wheel)}" in page
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(tmp_path / "got"),
                           "--index-url", (tmp_path / "simple").as_uri() + "/", "vc.probe==1.0"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "got" / wheel.name).read_bytes() == wheel.read_bytes()


def test_a_build_for_another_slurm_is_stale():
    """pyxis's cached build carries the Slurm it was built for; the builder's answer decides."""
    recipes = site_repo.load_recipes()
    site_repo.builder_image(recipes)  # cached: built once per machine
    done = {"pyxis": {"key": "k", "facts": {"slurm": "0.0.1"}}, "nhc": {"key": "k2", "facts": {}}}
    lines: list[str] = []
    assert site_repo.stale_facts(recipes, done, lines.append) == ["pyxis"]
    assert lines and "pyxis was built for slurm 0.0.1, the builder now has 22.05" in lines[0]
    current = lines[0].rsplit(" ", 2)[-2].rstrip(":")
    done["pyxis"]["facts"]["slurm"] = current
    assert site_repo.stale_facts(recipes, done) == []


# ------------------------------------------------------------------ a real service container
@pytest.fixture(scope="module")
def private_lab(tmp_path_factory):
    shared_base()
    prefix = new_prefix()
    home = tmp_path_factory.mktemp("sitehome")
    driver = PodmanDriver(home, prefix=prefix, mgmt_subnet=TEST_SUBNET)
    driver.ensure_mgmt_network()
    try:
        yield home, prefix, driver.mgmt_network
    finally:
        teardown(prefix)


def test_repository_service_serves_verified_sources_and_is_removed_with_the_lab(private_lab):
    home, prefix, network = private_lab
    service = site_services.catalogue()["repo"]
    service = dataclasses.replace(service, address=str(ipaddress.ip_network(TEST_SUBNET).network_address + 2))
    image = site_services.ensure_image(service)
    lines: list[str] = []
    ctx = ServiceContext(service, home, prefix, lines.append, image)
    service.prepare(ctx)  # cold: builds the packages; warm: builds nothing
    lines.clear()
    service.prepare(ctx)
    assert any(line.startswith("site repository: nothing to build") for line in lines), lines
    assert site_services.run_container(service, ctx, image, network) is True
    site_services.wait_ready(service, ctx)
    assert site_services.run_container(service, ctx, image, network) is False  # already running as asked

    pins = site_repo.pinned_sources()
    reply = requests.get(f"http://{service.address}/sources/pyxis-0.24.0.tar.gz", timeout=30)
    assert reply.status_code == 200
    assert hashlib.sha256(reply.content).hexdigest() == pins["pyxis-0.24.0.tar.gz"].sha256
    assert "enroot-4.1.2.tar.gz" in requests.get(f"http://{service.address}/sources/", timeout=30).text

    release = requests.get(f"http://{service.address}/debian/dists/bookworm/InRelease", timeout=30)
    assert release.status_code == 200 and release.text.startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    packages = requests.get(f"http://{service.address}/debian/dists/bookworm/main/binary-amd64/Packages",
                            timeout=30).text
    for name in ("enroot", "enroot+caps", "nvslurm-plugin-pyxis", "lbnl-nhc"):
        assert f"Package: {name}\n" in packages
    assert requests.get(f"http://{service.address}/debian/archive-key.asc",
                        timeout=30).text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")

    sums = requests.get(f"http://{service.address}/images/debian-trixie.sha256", timeout=30).text.split()
    image = requests.get(f"http://{service.address}/images/debian-trixie.sqsh", timeout=120)
    assert image.status_code == 200 and image.content[:4] == b"hsqs"  # a SquashFS superblock
    assert hashlib.sha256(image.content).hexdigest() == sums[sums.index("debian-trixie.sqsh") - 1]

    rows = site_services.running(prefix)
    assert rows["repo"]["state"] == "running" and rows["repo"]["container"] == f"{prefix}-site-repo"
    # the container cannot write what it serves
    probe = podman("exec", f"{prefix}-site-repo", "touch", "/srv/repo/x", check=False)
    assert probe.returncode != 0

    removed = remove_lab(prefix, keep_images=True)
    assert f"{prefix}-site-repo" in removed["containers"]
    assert leftovers(prefix)["containers"] == []
    assert site_services.running(prefix) == {}


def test_site_dns_keeps_only_a_hash_of_its_key_and_exports_what_network_reads(tmp_path):
    """The site DNS (10.252.0.4): its API key is made once per lab, the server's config holds
    only its scrypt hash (PowerDNS's form), and env gives the network vService its settings."""
    dns = site_services.catalogue()["dns"]
    assert dns.address == "10.252.0.4"
    assert dns.url_values() == {"API_URL": "http://10.252.0.4:8081", "NAMESERVER": "10.252.0.4"}
    ctx = site_services.ServiceContext(dns, tmp_path, "vctest")
    dns.prepare(ctx)
    key = ctx.secret("api_key")
    conf = (ctx.state_dir / "api.conf").read_text()
    assert key not in conf
    line = next(ln for ln in conf.splitlines() if ln.startswith("api-key="))
    fields = line.split("=", 1)[1].split("$")
    kind, params, salt, digest = fields[1:]
    assert (kind, params) == ("scrypt", "ln=10,p=1,r=8")
    want = hashlib.scrypt(key.encode(), salt=base64.b64decode(salt), n=1024, r=8, p=1, dklen=32)
    assert base64.b64decode(digest) == want
    dns.prepare(ctx)  # the same key: the file stays as it is
    assert (ctx.state_dir / "api.conf").read_text() == conf
    assert dns.env(ctx) == {"VCLUSTER_DNS_API_URL": "http://10.252.0.4:8081", "VCLUSTER_DNS_API_KEY": key,
                            "VCLUSTER_DNS_SERVER_ID": "localhost", "VCLUSTER_DNS_NAMESERVERS": "10.252.0.4",
                            "VCLUSTER_DNS_DOMAIN": "vcluster.internal"}


# ------------------------------------------------------------------ the site directory
def test_site_directory_files_keep_hashes_keys_and_export_what_iam_reads(tmp_path):
    """The site directory (10.252.0.3): its passwords are made once per lab and the directory's
    files hold only their {SSHA} hashes; each user's key pair is made once (0600); a second
    prepare writes nothing; env gives the iam vService its site settings."""
    from vcluster_lab.services import ldap
    service = site_services.catalogue()["ldap"]
    assert service.address == "10.252.0.3"
    assert service.url_values() == {"URI": "ldaps://10.252.0.3", "STARTTLS_URI": "ldap://10.252.0.3"}
    ctx = ServiceContext(service, tmp_path, "vctest")
    service.prepare(ctx)
    etc = ctx.state_dir / "etc"
    admin, reader = ctx.secret("admin_password"), ctx.secret("reader_password")
    texts = {p.name: p.read_text() for p in etc.iterdir()}
    assert not [name for name, text in texts.items() if admin in text or reader in text]
    salted = base64.b64decode(texts["reader.hash"].strip()[len("{SSHA}"):])
    assert hashlib.sha1(reader.encode() + salted[20:]).digest() == salted[:20]
    assert (etc / "server-key.pem").stat().st_mode & 0o777 == 0o600
    keys = ctx.state_dir / "keys"
    for user in ("alice", "bob", "mallory"):
        assert (keys / user).stat().st_mode & 0o777 == 0o600
        assert (keys / f"{user}.pub").read_text().split()[1] in texts["seed.ldif"]
    stamps = {p.name: p.stat().st_mtime_ns for p in etc.iterdir()}
    service.prepare(ctx)
    assert {p.name: p.stat().st_mtime_ns for p in etc.iterdir()} == stamps
    env = service.env(ctx)
    assert env["VCLUSTER_IAM_URI"] == "ldaps://10.252.0.3" and env["VCLUSTER_IAM_BIND_PASSWORD"] == reader
    assert env["VCLUSTER_IAM_BASE_DN"] == env["VCLUSTER_LAB_LDAP_BASE_DN"] == ldap.BASE_DN
    assert env["VCLUSTER_LAB_LDAP_CA_PATH"] == str(tmp_path / "tls" / "ca.pem")
    assert env["VCLUSTER_LAB_LDAP_USER_KEYS_DIR"] == str(keys)
    assert min(uid for uid, _group in ldap.USERS.values()) >= 5000


def _ldapsearch(network: str, ca: str, image: str, uri: str, *args: str, password: str | None = None):
    """ldapsearch from a client container on the network, verifying the server with the lab's CA."""
    argv = ["run", "--rm", "-i", "--network", network, "-v", f"{ca}:/ca.pem:ro", "-e", "LDAPTLS_CACERT=/ca.pem",
            "-e", "LDAPTLS_REQCERT=demand", image, "ldapsearch", "-LLL", "-o", "nettimeout=10", "-x", "-H", uri]
    if password is not None:
        argv += ["-y", "/dev/stdin"]
    return subprocess.run(["podman", *argv, *args], input=password or "", capture_output=True, text=True,
                          timeout=120, check=False, env=podman_env())


def test_site_directory_serves_users_over_ldaps_to_the_reader_only(private_lab):
    home, prefix, network = private_lab
    PodmanDriver(home, prefix=prefix, mgmt_subnet=TEST_SUBNET).ensure_mgmt_network()  # the repository test removes it
    service = site_services.catalogue()["ldap"]
    service = dataclasses.replace(service, address=str(ipaddress.ip_network(TEST_SUBNET).network_address + 3))
    image = site_services.ensure_image(service)
    ctx = ServiceContext(service, home, prefix, image=image)
    service.prepare(ctx)
    assert site_services.run_container(service, ctx, image, network) is True
    site_services.wait_ready(service, ctx)  # includes the reader's search over LDAPS inside
    env = service.env(ctx)
    ca, reader, password = env["VCLUSTER_LAB_LDAP_CA_PATH"], env["VCLUSTER_LAB_LDAP_BIND_DN"], \
        env["VCLUSTER_LAB_LDAP_BIND_PASSWORD"]
    base = env["VCLUSTER_LAB_LDAP_BASE_DN"]
    ldaps = f"ldaps://{service.address}"

    found = _ldapsearch(network, ca, image.ref, ldaps, "-D", reader, "-b", base, "(|(uid=alice)(memberUid=alice))",
                        "uid", "uidNumber", "homeDirectory", "loginShell", "sshPublicKey", "cn", "userPassword",
                        password=password)
    assert found.returncode == 0, found.stderr
    assert "uid: alice\n" in found.stdout and "uidNumber: 5001\n" in found.stdout
    assert "homeDirectory: /home/alice\n" in found.stdout and "loginShell: /bin/bash\n" in found.stdout
    assert "sshPublicKey: ssh-ed25519 " in found.stdout
    assert {"cn: hpc-users", "cn: hpc-admins"} <= set(found.stdout.splitlines())
    assert "cn: outsiders" not in found.stdout
    # StartTLS on 389 too; the reader reads no password, not even its own
    own = _ldapsearch(network, ca, image.ref, f"ldap://{service.address}", "-ZZ", "-D", reader, "-b", reader,
                      "-s", "base", "userPassword", "cn", password=password)
    assert own.returncode == 0, own.stderr
    assert "cn: reader" in own.stdout and "userPassword" not in own.stdout

    wrong = _ldapsearch(network, ca, image.ref, ldaps, "-D", reader, "-b", base, "(uid=alice)",
                        password=password + "x")
    assert wrong.returncode == 49 and "Invalid credentials" in wrong.stderr
    anonymous = _ldapsearch(network, ca, image.ref, ldaps, "-b", base, "(uid=alice)")
    assert anonymous.returncode != 0 and "uid: alice" not in anonymous.stdout
    cleartext = _ldapsearch(network, ca, image.ref, f"ldap://{service.address}", "-D", reader, "-b", base,
                            "(uid=alice)", password=password)
    assert cleartext.returncode != 0 and "uid: alice" not in cleartext.stdout  # a simple bind needs TLS

    removed = remove_lab(prefix, keep_images=True)
    assert f"{prefix}-site-ldap" in removed["containers"]
