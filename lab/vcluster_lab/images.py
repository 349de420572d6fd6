"""Lab images: the debootstrap base image and image-builder style recipe builds.

No container registry is reachable and ``podman build`` cannot set its rlimits here (see
docs/lab-host-notes), so the base image is imported from a debootstrap root file system
(cached as a tarball, so a second import takes seconds) and recipes are built by running
the parent image, applying the steps with ``podman exec`` and committing the result.
Every image carries provenance labels (``org.openchami.image.*`` as image-builder
writes them, ``io.vcluster.image.*`` for what the lab adds), and a recipe already built
on the same parent is reused rather than rebuilt.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import yaml

from .containers import PREFIX_LABEL, RUN_OPTIONS, image_id, lab_prefix, podman, podman_json
from .nodes.base import BuiltImage, DriverError

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: What Ansible, sshd-based management and (later) Slurm need on a node; nothing more.
#: python3-apt is what Ansible's apt module needs: without it the module installs it itself,
#: on every boot of a diskless node (an apt-get update and an install per node and boot).
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt",
                 "iproute2", "iputils-ping", "ca-certificates", "sudo", "less", "procps")
#: Bump when the customisation of the root file system changes (part of the cache key).
ROOTFS_FORMAT = 2
#: Bump when the way recipes are applied changes (part of the recipe hash).
RECIPE_FORMAT = 1
INIT_CMD = 'CMD ["/sbin/init"]'

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


class ImageError(DriverError):
    """An image could not be made; the message names the image and the failing step."""


# ------------------------------------------------------------------ places and names
def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vcluster-lab`` (default ``~/.cache/vcluster-lab``), created 0700."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(root) / "vcluster-lab"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


#: The base image every lab shares (architecture.md); labelled with the prefix that made it.
BASE_REF = f"localhost/vclab-base:{SUITE}"


def base_ref(prefix: str | None = None) -> str:
    """The base image reference (one for every lab instance on the machine)."""
    return BASE_REF


@contextlib.contextmanager
def _locked(name: str):
    """An exclusive lock file in the cache dir: concurrent callers wait for each other."""
    with open(cache_dir() / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ the Debian mirror
def _apt_entries(root: Path = Path("/etc/apt")) -> list[tuple[str, list[str]]]:
    """(URI, suites) of each enabled ``deb`` source of the host, in apt's file order."""
    files = []
    if (root / "sources.list").is_file():
        files.append(root / "sources.list")
    files += sorted(p for p in (root / "sources.list.d").glob("*")
                    if p.suffix in (".list", ".sources"))
    entries: list[tuple[str, list[str]]] = []
    for path in files:
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for para in re.split(r"\n\s*\n", text):
                fields = {}
                for line in para.splitlines():
                    if line.startswith("#") or ":" not in line or line[0].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.split()
                if ("deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]):
                    for uri in fields.get("uris", []):
                        entries.append((uri, fields.get("suites", [])))
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]]))
    return entries


def debian_mirrors() -> tuple[str, str | None, bool]:
    """The host's Debian mirror, its security mirror (or None), and whether updates is used."""
    entries = _apt_entries()
    main = next((uri for uri, suites in entries if SUITE in suites), DEFAULT_MIRROR)
    security = next((uri for uri, suites in entries if f"{SUITE}-security" in suites), None)
    updates = any(f"{SUITE}-updates" in suites for _, suites in entries)
    return main.rstrip("/"), security.rstrip("/") if security else None, updates


def _sources_file(main: str, security: str | None, updates: bool) -> str:
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    suites = SUITE + (f" {SUITE}-updates" if updates else "")
    text = (f"Types: deb\nURIs: {main}\nSuites: {suites}\nComponents: main\n"
            f"Signed-By: {keyring}\n")
    if security:
        text += (f"\nTypes: deb\nURIs: {security}\nSuites: {SUITE}-security\n"
                 f"Components: main\nSigned-By: {keyring}\n")
    return text


# ------------------------------------------------------------------ the root file system
_KEYGEN_UNIT = """\
[Unit]
Description=Generate this node's own SSH host keys (vcluster lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
# No RSA key: a 3072-bit one takes seconds per node at boot, ed25519 and ECDSA take ms.
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key
RemainAfterExit=yes
"""

_SSHD_CONF = """\
# vcluster lab node: root logs in with the lab key only; host keys made at first boot.
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""

_NODOC = """\
# vcluster lab node: no manuals or documentation, to keep images small.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
"""


def _customise(root: Path, sources: str) -> None:
    """Turn a fresh debootstrap tree into a lab node root file system."""
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(sources)
    (root / "etc/dpkg/dpkg.cfg.d/01-vclab-nodoc").write_text(_NODOC)
    for sub in ("usr/share/man", "usr/share/info"):
        shutil.rmtree(root / sub, ignore_errors=True)
    for doc in (root / "usr/share/doc").glob("*"):
        for item in doc.iterdir() if doc.is_dir() else ():
            if item.name != "copyright":
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    # sshd: root with a key; host keys made per node at first boot, never shared.
    (root / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    (root / "etc/ssh/sshd_config.d/vclab.conf").write_text(_SSHD_CONF)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    unit = root / "etc/systemd/system/vclab-ssh-keygen.service"
    unit.write_text(_KEYGEN_UNIT)
    wants = root / "etc/systemd/system/ssh.service.wants"
    wants.mkdir(exist_ok=True)
    (wants / unit.name).unlink(missing_ok=True)
    (wants / unit.name).symlink_to(f"../{unit.name}")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    # Every node gets its own machine id at first boot (systemd writes an empty file's id).
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    (root / "etc/hostname").unlink(missing_ok=True)
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def _umount_below(path: Path) -> None:
    """Unmount anything a failed debootstrap left mounted under ``path``."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/mounts") as fh:
        points = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def rootfs_key(packages=BASE_PACKAGES) -> str:
    """What the cached root file system depends on: suite, mirrors, packages, format."""
    main, security, updates = debian_mirrors()
    blob = json.dumps({"suite": SUITE, "mirror": main, "security": security,
                       "updates": updates, "packages": sorted(packages),
                       "format": ROOTFS_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def rootfs_tarball(packages=BASE_PACKAGES, log: Log = _quiet) -> Path:
    """The cached base root file system tarball, made with debootstrap when missing.

    A file lock makes concurrent callers wait for the one that runs debootstrap.
    """
    for tool in ("debootstrap", "tar"):
        if shutil.which(tool) is None:
            raise ImageError(f"base image: {tool} is not installed (apt-get install {tool})")
    key = rootfs_key(packages)
    cache = cache_dir()
    tarball = cache / f"rootfs-{SUITE}-{key}.tar"
    with _locked(f"rootfs-{key}"):
        if tarball.is_file():
            return tarball
        main, security, updates = debian_mirrors()
        work = Path(tempfile.mkdtemp(prefix=f"rootfs-{key}-", dir=cache))
        logfile = cache / f"debootstrap-{key}.log"
        try:
            root = work / "root"
            log(f"debootstrap {SUITE} from {main} (about a minute; log: {logfile})")
            with open(logfile, "w") as out:
                proc = subprocess.run(
                    ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
                     SUITE, str(root), main], stdout=out, stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0:
                tail = logfile.read_text(errors="replace").strip().splitlines()[-3:]
                raise ImageError(f"base image: debootstrap {SUITE} from {main} failed "
                                 f"(exit {proc.returncode}): {' | '.join(tail)}; see {logfile}")
            _customise(root, _sources_file(main, security, updates))
            partial = work / "rootfs.tar"
            proc = subprocess.run(
                ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(root),
                 "-cf", str(partial), "."], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise ImageError(f"base image: packing {root} failed: {proc.stderr.strip()}")
            os.replace(partial, tarball)
            tarball.chmod(0o600)
        finally:
            _umount_below(work)
            shutil.rmtree(work, ignore_errors=True)
    return tarball


# ------------------------------------------------------------------ image inspection
def _inspect(ref: str) -> dict:
    data = podman_json("image", "inspect", ref, what=f"image {ref}")
    return data[0] if isinstance(data, list) else data


def built_image(ref: str) -> BuiltImage:
    """Describe an existing local image as a :class:`BuiltImage`."""
    info = _inspect(ref)
    labels = (info.get("Config") or {}).get("Labels") or info.get("Labels") or {}
    return BuiltImage(ref=ref, digest="sha256:" + info["Id"].removeprefix("sha256:"),
                      labels=dict(labels))


def _label_args(labels: dict) -> list[str]:
    args = []
    for key, value in labels.items():
        args += ["--change", f"LABEL {key}={json.dumps(str(value))}"]
    return args


# ------------------------------------------------------------------ the base image
def ensure_base(prefix: str | None = None, log: Log = _quiet) -> BuiltImage:
    """Make sure the lab's base image exists (import the cached root file system)."""
    prefix = prefix or lab_prefix()
    ref = base_ref(prefix)
    key = rootfs_key()
    with _locked("import-base"):
        if image_id(ref):
            image = built_image(ref)
            if image.labels.get("io.vcluster.image.recipe-sha256") == key:
                return image
            log(f"{ref} was made from another root file system: importing it again")
        tarball = rootfs_tarball(log=log)
        log(f"importing {tarball.name} as {ref}")
        labels = {
            "io.vcluster.lab": "1", PREFIX_LABEL: prefix,
            "org.openchami.image.name": "vclab-base",
            "org.openchami.image.type": "base",
            "org.openchami.image.parent": "scratch",
            "org.openchami.image.package-manager": "apt",
            "org.openchami.image.tags": SUITE,
            "org.openchami.image.build-date": _now(),
            "org.openchami.image.packages": ",".join(BASE_PACKAGES),
            "io.vcluster.image.recipe-sha256": key,
            "io.vcluster.image.parent-digest": "",
            "io.vcluster.image.builder": f"vcluster-lab debootstrap {SUITE}",
            "io.vcluster.image.build-date": _now(),
        }
        podman("import", "--change", INIT_CMD, *_label_args(labels), str(tarball), ref,
               what=f"base image {ref}")
        return built_image(ref)


# ------------------------------------------------------------------ recipes
def load_recipe(path: str | Path) -> dict:
    """Read an image-builder recipe file (YAML)."""
    path = Path(path)
    try:
        recipe = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ImageError(f"recipe {path}: cannot read it: {exc}") from exc
    if not isinstance(recipe, dict):
        raise ImageError(f"recipe {path}: expected a mapping with options/packages/cmds")
    return recipe


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, (str, int, float)) else list(value)


def _check_recipe(recipe: dict) -> None:
    options = recipe.get("options") or {}
    if not isinstance(options, dict):
        raise ImageError("recipe: options must be a mapping")
    manager = options.get("pkg_manager", "apt")
    if manager != "apt":
        raise ImageError(f"recipe: pkg_manager {manager!r} is not supported by the lab "
                         "(its images are Debian: use apt)")
    for key in ("repos", "package_groups"):
        if recipe.get(key):
            raise ImageError(f"recipe: {key} is not supported by the lab (Debian images "
                             "use the host's mirror); put what you need in cmds")
    for i, step in enumerate(_as_list(recipe.get("cmds"))):
        if not isinstance(step, dict) or not isinstance(step.get("cmd"), str):
            raise ImageError(f"recipe: cmds[{i}] must be a mapping with a 'cmd' string")
    for i, item in enumerate(_as_list(recipe.get("copyfiles"))):
        if not isinstance(item, dict) or not item.get("src") or not item.get("dest"):
            raise ImageError(f"recipe: copyfiles[{i}] must have 'src' and 'dest'")


def recipe_sha256(recipe: dict, base_dir: Path | None = None) -> str:
    """A hash of the recipe and of the content of the files it copies."""
    files = {}
    for item in _as_list(recipe.get("copyfiles")):
        src = Path(base_dir or ".") / item["src"]
        try:
            files[item["src"]] = hashlib.sha256(src.read_bytes()).hexdigest()
        except OSError as exc:
            raise ImageError(f"recipe: copyfiles src {src}: {exc.strerror}") from exc
    blob = json.dumps({"recipe": recipe, "files": files, "format": RECIPE_FORMAT},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def resolve_parent(parent: str | None, prefix: str, log: Log = _quiet) -> str:
    """A podman reference for the recipe's parent; the lab base image when none is named."""
    base = base_ref(prefix)
    if not parent or parent in (base, base.removeprefix("localhost/"), "base", "scratch"):
        ensure_base(prefix, log)
        return base
    ref = parent if "/" in parent.split(":")[0] else f"localhost/{parent}"
    if image_id(ref):
        return ref
    local = "localhost/" + parent.rsplit("/", 1)[-1]
    if image_id(local):
        return local
    raise ImageError(f"recipe: parent image {parent!r} does not exist here "
                     f"(tried {ref} and {local}; no registry is reachable from the lab)")


def _find_cached(name: str, sha: str, parent_digest: str, prefix: str) -> str | None:
    # podman ORs repeated label filters: filter on the hash, check the rest here.
    rows = podman_json("images", "--format", "json",
                       "--filter", f"label=io.vcluster.image.recipe-sha256={sha}",
                       what=f"image {name}")
    for row in rows or []:
        labels = row.get("Labels") or {}
        if (labels.get("io.vcluster.image.recipe-sha256") == sha
                and labels.get("io.vcluster.image.parent-digest") == parent_digest
                and labels.get("org.openchami.image.name") == name
                and labels.get(PREFIX_LABEL) == prefix):
            return "sha256:" + row["Id"].removeprefix("sha256:")
    return None


_POLICY_RC = "#!/bin/sh\n# vcluster lab image build: start no daemon while installing\nexit 101\n"


def _step(container: str, script: str, what: str, log: Log) -> None:
    """Run one build step in the build container; a failure shows the step's last lines."""
    log(f"  {what}")
    proc = podman("exec", "-e", "DEBIAN_FRONTEND=noninteractive", container,
                  "/bin/sh", "-ec", script + " 2>&1", check=False, timeout=3600,
                  what=what)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise ImageError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))


def build_recipe(recipe: dict, name: str | None = None, tags=None,
                 builder: str = "vcluster-lab", prefix: str | None = None,
                 base_dir: str | Path | None = None, log: Log = _quiet) -> BuiltImage:
    """Build ``recipe`` into ``localhost/<name>:<tag>`` (and every other tag); reuse a build.

    ``name`` and ``tags`` default to the recipe's ``options.name`` and
    ``options.publish_tags``. The same recipe on the same parent image (by digest) gives
    back the image already built, tagged as asked, without running anything.
    """
    _check_recipe(recipe)
    prefix = prefix or lab_prefix()
    options = recipe.get("options") or {}
    name = name or options.get("name")
    tags = [str(t) for t in _as_list(tags if tags is not None else options.get("publish_tags"))]
    if not name or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", str(name)):
        raise ImageError(f"recipe: image name {name!r} is missing or not a valid image name "
                         "(lower case letters, digits, '.', '_', '-')")
    tags = tags or ["latest"]
    refs = [f"localhost/{name}:{tag}" for tag in tags]
    parent = resolve_parent(options.get("parent"), prefix, log)
    parent_digest = image_id(parent) or ""
    sha = recipe_sha256(recipe, Path(base_dir) if base_dir else None)

    with _locked(f"build-{sha[:16]}"):
        cached = _find_cached(str(name), sha, parent_digest, prefix)
        if cached:
            log(f"{refs[0]}: recipe already built on this parent ({cached[:19]}): reused")
            for ref in refs:
                podman("tag", cached, ref, what=f"image {ref}")
            return built_image(refs[0])
        container = f"{prefix}-build-{secrets.token_hex(4)}"
        log(f"building {refs[0]} from {parent} in {container}")
        packages = [str(p) for p in _as_list(recipe.get("packages"))]
        removed = [str(p) for p in _as_list(recipe.get("remove_packages"))]
        # No --label: podman commit would bake it into the image (and its containers).
        podman("run", "-d", "--name", container, *RUN_OPTIONS, "--network", "host", "--entrypoint", "/bin/sleep", parent, "infinity",
               what=f"image {refs[0]}: build container")
        try:
            _step(container, f"printf %s '{_POLICY_RC}' > /usr/sbin/policy-rc.d && "
                  "chmod 755 /usr/sbin/policy-rc.d", f"{refs[0]}: prepare", log)
            if packages:
                _step(container, "apt-get update -qq && apt-get install -y -qq "
                      "--no-install-recommends " + " ".join(map(_shq, packages)),
                      f"{refs[0]}: install {', '.join(packages)}", log)
            if removed:
                _step(container, "apt-get purge -y -qq " + " ".join(map(_shq, removed)) +
                      " && apt-get autoremove -y -qq --purge",
                      f"{refs[0]}: remove {', '.join(removed)}", log)
            for item in _as_list(recipe.get("copyfiles")):
                src = Path(base_dir or ".") / item["src"]
                podman("cp", str(src), f"{container}:{item['dest']}",
                       what=f"image {refs[0]}: copy {src} to {item['dest']}")
            for i, step in enumerate(_as_list(recipe.get("cmds"))):
                _step(container, step["cmd"], f"{refs[0]}: cmds[{i}] {step['cmd'][:60]!r}", log)
            _step(container, "rm -f /usr/sbin/policy-rc.d /etc/ssh/ssh_host_*; apt-get clean; "
                  "rm -rf /var/lib/apt/lists/*; mkdir -p /var/lib/apt/lists/partial; "
                  ": > /etc/machine-id", f"{refs[0]}: clean", log)
            date = _now()
            labels = {
                "io.vcluster.lab": "1", PREFIX_LABEL: prefix,
                "org.openchami.image.name": name,
                "org.openchami.image.type": options.get("layer_type", "base"),
                "org.openchami.image.parent": parent,
                "org.openchami.image.package-manager": "apt",
                "org.openchami.image.tags": ",".join(tags),
                "org.openchami.image.build-date": date,
                "org.openchami.image.packages": ",".join(packages),
                "io.vcluster.image.recipe-sha256": sha,
                "io.vcluster.image.parent-digest": parent_digest,
                "io.vcluster.image.builder": builder,
                "io.vcluster.image.build-date": date,
            }
            podman("commit", "--quiet", "--change", INIT_CMD, "--change", "ENTRYPOINT []",
                   *_label_args(labels), container, refs[0], what=f"image {refs[0]}: commit")
            for ref in refs[1:]:
                podman("tag", refs[0], ref, what=f"image {ref}")
        finally:
            podman("rm", "-f", "-t", "0", container, check=False, what=container)
        image = built_image(refs[0])
        log(f"built {refs[0]} ({image.digest[:19]})")
        return image


def _shq(word: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.+:_=~-]+", word):
        raise ImageError(f"recipe: {word!r} is not a valid Debian package name")
    return word


def lab_images(prefix: str | None = None) -> list[dict]:
    """Every image lab ``prefix`` made (found by its labels), one row per image."""
    prefix = prefix or lab_prefix()
    # podman ORs repeated label filters: filter on one, check the other here.
    rows = podman_json("images", "--format", "json", "--filter",
                       f"label={PREFIX_LABEL}={prefix}", what="lab images") or []
    out: dict[str, dict] = {}
    for row in rows:
        labels = row.get("Labels") or {}
        if labels.get(PREFIX_LABEL) == prefix and labels.get("io.vcluster.lab") == "1":
            out.setdefault(row["Id"], row)
    return list(out.values())


# ------------------------------------------------------------------ machine-wide cached images
#: The prefix label of images every lab on the machine shares and no lab's ``down``
#: removes (it is not a valid lab prefix): site-service and package-builder images.
CACHE_PREFIX = "vclab-cache"


def cached_key(recipe: dict, base_dir: str | Path | None = None) -> str:
    """What a cached image depends on: its recipe (and copied files) and the base root fs."""
    blob = f"{recipe_sha256(recipe, Path(base_dir) if base_dir else None)}:{rootfs_key()}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_image(name: str, recipe: dict, base_dir: str | Path | None = None,
                 log: Log = _quiet) -> BuiltImage:
    """``localhost/<name>:<key>``, built once from ``recipe`` on the lab base image.

    Unlike a lab's own images these outlive ``down`` (they take minutes of apt to make
    and nothing lab-specific is in them): the key is the recipe hash and the base root
    file system's key, not the base image's digest, so a re-imported base image does not
    rebuild them. A newer build of ``name`` removes the tags it supersedes.
    """
    key = cached_key(recipe, base_dir)
    ref = f"localhost/{name}:{key}"
    with _locked(f"cached-{name}"):
        if image_id(ref):
            return built_image(ref)
        recipe = json.loads(json.dumps(recipe))
        recipe.setdefault("options", {})["parent"] = BASE_REF
        if not image_id(BASE_REF):
            ensure_base(lab_prefix(), log)
        image = build_recipe(recipe, name=name, tags=[key], builder="vcluster-lab (cached)",
                             prefix=CACHE_PREFIX, base_dir=base_dir, log=log)
        rows = podman_json("images", "--format", "json", "--filter", f"reference=localhost/{name}",
                           what=f"image {name}") or []
        for row in rows:
            for old in row.get("Names") or []:
                if old.startswith(f"localhost/{name}:") and old != ref:
                    podman("rmi", old, check=False, what=f"image {old}")
        return image
