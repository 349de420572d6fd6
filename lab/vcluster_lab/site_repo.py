"""The site package repository's content: verified upstream sources, and what is built from them.

A real site keeps upstream artifacts in its own repository (Nexus on CSM, a mirror on
OpenCHAMI) and installs nodes from it. The lab's repository (the ``repo`` site service,
10.252.0.2) serves a directory the lab assembles here, in
``$XDG_CACHE_HOME/vcluster-lab/site/repo/www``:

* ``sources/``: the pinned upstream archives of ``services/repo/sources.yml``, each
  checked against its pinned sha256 (and the mirror's ``SHA256SUMS`` when it has one);
* ``debian/``: a signed apt repository (suite ``bookworm``, component ``main``) of the
  Debian packages built from them, one declarative recipe per source in
  ``services/repo/packages/<name>.yml`` (:func:`load_recipes`), in a builder container
  (never on the host), cached by the source's checksum and the recipe
  (:func:`build_packages`): a second ``up`` builds nothing;
* ``python/`` and ``simple/``: pinned Python distributions (``services/repo/python.yml``)
  and their PEP 503 index, for what the site installs with pip;
* ``images/``: container images the lab builds for users (``services/repo/images.yml``),
  as SquashFS (enroot, pyxis) and as a root file system tarball (``podman import``).

Where the archives come from (:func:`sources_origin`): ``$VCLUSTER_LAB_SOURCES`` (a
directory, or the URL of a mirror), else ``<checkout>/../shared/sources`` when it exists
(the layout of the development machines and their CI), else the pinned upstream URLs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml

from . import images
from .containers import RUN_OPTIONS, podman
from .home import repo_root
from .nodes.base import DriverError

SOURCES_ENV = "VCLUSTER_LAB_SOURCES"
DATA = Path(__file__).resolve().parent / "services" / "repo"

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


class RepoError(DriverError):
    """The repository's content could not be made; the message names the file or step."""


# ------------------------------------------------------------------ sources
@dataclasses.dataclass(frozen=True)
class Source:
    """A pinned upstream archive."""

    file: str
    sha256: str
    url: str


def pinned_sources(path: Path = DATA / "sources.yml") -> dict[str, Source]:
    """The archives the repository builds from and serves, by file name."""
    data = yaml.safe_load(path.read_text()) or {}
    return {name: Source(name, str(item["sha256"]).lower(), str(item["url"])) for name, item in data.items()}


def sources_origin() -> tuple[str, str]:
    """Where the sources come from: ``("dir", path)``, ``("url", base)`` or ``("upstream", "")``."""
    explicit = os.environ.get(SOURCES_ENV, "").strip()
    if explicit:
        if explicit.startswith(("http://", "https://")):
            return "url", explicit.rstrip("/")
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise RepoError(f"{SOURCES_ENV}={explicit}: not a directory (give the directory holding the "
                            "upstream archives, or the URL of a mirror of them)")
        return "dir", str(path.resolve())
    root = repo_root()
    if root is not None and (root.parent / "shared" / "sources").is_dir():
        return "dir", str((root.parent / "shared" / "sources").resolve())
    return "upstream", ""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mirror_sums(directory: Path) -> dict[str, str]:
    """The mirror's own SHA256SUMS (``<sha256>  <file>`` lines), if it has one."""
    path = directory / "SHA256SUMS"
    sums = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _download(url: str, dest: Path, what: str) -> None:
    import requests  # pylint: disable=import-outside-toplevel
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with requests.get(url, stream=True, timeout=60) as reply:
            reply.raise_for_status()
            with open(tmp, "wb") as fh:
                for block in reply.iter_content(1 << 20):
                    fh.write(block)
    except requests.RequestException as exc:
        tmp.unlink(missing_ok=True)
        raise RepoError(f"{what}: download from {url} failed: {exc}") from exc
    os.replace(tmp, dest)


def fetch_sources(dest: Path, wanted: list[str] | None = None, log: Log = _quiet,
                  pins: dict[str, Source] | None = None) -> dict[str, Path]:
    """Put each pinned archive (or those ``wanted``) in ``dest``, verified; return their paths.

    A file already in ``dest`` with the right checksum is kept. A missing or corrupt
    source is one error naming the file, where it was looked for and its expected sha256.
    """
    pins = pinned_sources() if pins is None else pins
    names = wanted if wanted is not None else sorted(pins)
    unknown = [n for n in names if n not in pins]
    if unknown:
        raise RepoError(f"sources {', '.join(unknown)} are not pinned in {DATA / 'sources.yml'}")
    kind, where = sources_origin()
    dest.mkdir(parents=True, exist_ok=True)
    mirror_sums = _mirror_sums(Path(where)) if kind == "dir" else {}
    out: dict[str, Path] = {}
    problems: list[str] = []
    for name in names:
        pin = pins[name]
        target = dest / name
        if name in mirror_sums and mirror_sums[name] != pin.sha256:
            problems.append(f"{Path(where) / 'SHA256SUMS'} gives {name} sha256 {mirror_sums[name]}, "
                            f"the lab pins {pin.sha256}")
            continue
        if target.is_file() and sha256_file(target) == pin.sha256:
            out[name] = target
            continue
        if kind == "dir":
            origin = Path(where) / name
            if not origin.is_file():
                problems.append(f"{origin} is missing (expected sha256 {pin.sha256}; upstream {pin.url})")
                continue
            got = sha256_file(origin)
            if got != pin.sha256:
                problems.append(f"{origin} is corrupt: sha256 {got}, expected {pin.sha256}")
                continue
            tmp = target.with_suffix(target.suffix + ".part")
            shutil.copyfile(origin, tmp)
            os.replace(tmp, target)
        else:
            url = f"{where}/{name}" if kind == "url" else pin.url
            log(f"downloading {name} from {url}")
            _download(url, target, name)
            got = sha256_file(target)
            if got != pin.sha256:
                target.unlink()
                problems.append(f"{name} from {url} is corrupt: sha256 {got}, expected {pin.sha256}")
                continue
        target.chmod(0o644)
        out[name] = target
    if problems:
        origin = {"dir": f"{SOURCES_ENV} directory {where}", "url": f"the mirror {where}",
                  "upstream": "upstream (no VCLUSTER_LAB_SOURCES, no ../shared/sources)"}[kind]
        raise RepoError(f"site repository: sources from {origin}: " + "; ".join(problems))
    return out


# ------------------------------------------------------------------ package recipes
#: Bump when the way recipes become packages changes (part of every build's key).
BUILD_FORMAT = 1
#: Bump when the layout of the apt repository changes (part of its content key).
APT_FORMAT = 2
BUILDER_IMAGE = "vclab-debbuild"
#: What every build needs besides the recipes' build_depends (packaging, image squashing).
BUILDER_PACKAGES = ("dpkg-dev", "fakeroot", "squashfs-tools", "xz-utils", "ca-certificates")
#: The io.vcluster.build label marks build containers (tests check none is left behind).
BUILD_LABEL = "io.vcluster.build"


def _build_labels() -> tuple[str, ...]:
    """The labels of the lab's build containers: the kind, and who asked (VCLUSTER_BUILD_OWNER, as the
    image module does), so that a test session counts only its own leftovers."""
    owner = os.environ.get("VCLUSTER_BUILD_OWNER", "")
    return ("--label", f"{BUILD_LABEL}=site-repo") + (("--label", f"{BUILD_LABEL}.owner={owner}") if owner else ())
SUITE = "bookworm"
MAINTAINER = "vcluster lab site repository <repo@vcluster-lab.invalid>"
_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_FACT = re.compile(r"[A-Za-z0-9.+~-]+")
_RELATIONS = ("pre_depends", "depends", "recommends", "suggests", "conflicts", "breaks", "replaces",
              "provides")
_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
_PACKAGE_KEYS = {"architecture", "section", "priority", "description", *_RELATIONS, *_SCRIPTS}
_RECIPE_KEYS = {"source", "version", "revision", "facts", "build_depends", "build", "packages", "sources", "python"}


def _recipe_error(path: Path, where: str, what: str) -> RepoError:
    return RepoError(f"package recipe {path}: {where}: {what}")


def check_recipe(path: Path, data, pins: dict[str, Source]) -> dict:
    """A recipe as the builder needs it, or one error naming the file and the field."""
    if not isinstance(data, dict):
        raise _recipe_error(path, "(top level)", "expected a mapping")
    unknown = sorted(set(data) - _RECIPE_KEYS)
    if unknown:
        raise _recipe_error(path, unknown[0], f"unknown key; a recipe takes {', '.join(sorted(_RECIPE_KEYS))}")
    for key in ("source", "version", "build", "packages"):
        if not data.get(key):
            raise _recipe_error(path, key, "missing")
    if data["source"] not in pins:
        raise _recipe_error(path, "source", f"{data['source']!r} is not pinned in {DATA / 'sources.yml'}")
    if not re.fullmatch(r"[0-9][A-Za-z0-9.+~]*", str(data["version"])):
        raise _recipe_error(path, "version", f"{data['version']!r} is not a Debian upstream version")
    extra = data.get("sources") or []
    if not isinstance(extra, list) or not all(isinstance(s, str) for s in extra):
        raise _recipe_error(path, "sources", "expected a list of archive file names")
    for item in extra:
        if item not in pins:
            raise _recipe_error(path, "sources", f"{item!r} is not pinned in {DATA / 'sources.yml'}")
    wheels = data.get("python") or []
    if not isinstance(wheels, list) or not all(isinstance(w, str) and re.fullmatch(r"[A-Za-z0-9_.+-]+", w)
                                               for w in wheels):
        raise _recipe_error(path, "python", "expected a list of distribution file names pinned in python.yml")
    facts = data.get("facts") or {}
    if not isinstance(facts, dict) or not all(re.fullmatch(r"[a-z_]+", k) and isinstance(v, str)
                                              for k, v in facts.items()):
        raise _recipe_error(path, "facts", "expected a mapping of lower-case names to shell commands")
    deps = data.get("build_depends") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) and _NAME.fullmatch(d) for d in deps):
        raise _recipe_error(path, "build_depends", "expected a list of Debian package names")
    if not isinstance(data["packages"], dict):
        raise _recipe_error(path, "packages", "expected a mapping of package name to its control fields")
    for name, fields in data["packages"].items():
        where = f"packages.{name}"
        if not _NAME.fullmatch(str(name)):
            raise _recipe_error(path, where, "not a Debian package name")
        if not isinstance(fields, dict) or not isinstance(fields.get("description"), str):
            raise _recipe_error(path, f"{where}.description", "missing (a summary line, then the long description)")
        unknown = sorted(set(fields) - _PACKAGE_KEYS)
        if unknown:
            raise _recipe_error(path, f"{where}.{unknown[0]}", f"unknown field; a package takes "
                                f"{', '.join(sorted(_PACKAGE_KEYS))}")
        if fields.get("architecture", "any") not in ("any", "all"):
            raise _recipe_error(path, f"{where}.architecture", "any or all")
        for rel in _RELATIONS:
            if not isinstance(fields.get(rel, []), list):
                raise _recipe_error(path, f"{where}.{rel}", "expected a list")
    return data


def load_recipes(directory: Path = DATA / "packages", pins: dict[str, Source] | None = None) -> dict[str, dict]:
    """Every package recipe (``<name>.yml``), checked, by name."""
    pins = pinned_sources() if pins is None else pins
    out = {}
    for path in sorted(directory.glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise RepoError(f"package recipe {path}: not YAML: {exc}") from exc
        out[path.stem] = check_recipe(path, data, pins)
    return out


def builder_recipe(recipes: dict[str, dict]) -> dict:
    """The builder image: the base image and every recipe's build dependencies."""
    packages = set(BUILDER_PACKAGES)
    for recipe in recipes.values():
        packages.update(recipe.get("build_depends") or [])
    return {"options": {"name": BUILDER_IMAGE, "pkg_manager": "apt"}, "packages": sorted(packages)}


def builder_image(recipes: dict[str, dict] | None = None, log: Log = _quiet) -> images.BuiltImage:
    """The builder image (made once: minutes of apt), for every recipe's build dependencies."""
    recipes = load_recipes() if recipes is None else recipes
    return images.cached_image(BUILDER_IMAGE, builder_recipe(recipes), log=log)


def build_key(recipe: dict, pin: Source, extra: dict[str, str] | None = None) -> str:
    """What a build depends on: the recipe, the source's checksum (and those of the extra sources
    and Python distributions it names, ``extra``: file -> sha256), the base root file system."""
    blob = json.dumps({"recipe": recipe, "source": pin.sha256, "rootfs": images.rootfs_key(),
                       "format": BUILD_FORMAT, **({"extra": extra} if extra else {})}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def builds_dir() -> Path:
    path = images.cache_dir() / "site" / "repo" / "builds"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fmt(text: str, values: dict[str, str]) -> str:
    return text.format(**values) if "{" in text else text


def control_file(name: str, fields: dict, values: dict[str, str], arch: str, size_kib: int,
                 homepage: str) -> str:
    """The DEBIAN/control of one binary package."""
    summary, _, long = _fmt(fields["description"], values).strip().partition("\n")
    lines = [f"Package: {name}", f"Version: {values['version']}",
             f"Architecture: {'all' if fields.get('architecture') == 'all' else arch}",
             f"Maintainer: {MAINTAINER}", f"Installed-Size: {size_kib}",
             f"Section: {fields.get('section', 'misc')}", f"Priority: {fields.get('priority', 'optional')}",
             f"Homepage: {homepage}"]
    for rel in _RELATIONS:
        items = [_fmt(str(i), values) for i in fields.get(rel) or []]
        if items:
            lines.append(f"{rel.replace('_', '-').title()}: {', '.join(items)}")
    lines.append(f"Description: {summary.strip()}")
    for line in long.splitlines():
        line = line.strip()
        lines.append(f" {line}" if line else " .")
    return "\n".join(lines) + "\n"


def _tree_size_kib(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and "DEBIAN" not in path.relative_to(root).parts[:1]:
            total += path.stat().st_size
    return max(1, (total + 1023) // 1024)


def _homepage(pin: Source) -> str:
    match = re.match(r"(https://github.com/[^/]+/[^/]+)/", pin.url)
    return match.group(1) if match else pin.url


class _Builder:
    """One builder container (``podman run`` + ``exec``), removed whatever happens."""

    def __init__(self, image: str, volumes: list[str], log: Log):
        self.name = f"{images.CACHE_PREFIX}-build-{secrets.token_hex(4)}"
        self.image, self.volumes, self.log = image, volumes, log

    def __enter__(self) -> "_Builder":
        args = []
        for vol in self.volumes:
            args += ["-v", vol]
        podman("run", "-d", "--name", self.name, *_build_labels(), *RUN_OPTIONS,
               "--network", "none", *args, "--entrypoint", "/bin/sleep", self.image, "infinity",
               what="site repository: builder container")
        return self

    def __exit__(self, *exc) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False, what=self.name)

    def sh(self, script: str, what: str, logfile: Path | None = None, timeout: float = 3600) -> str:
        proc = podman("exec", self.name, "/bin/sh", "-ec", script, check=False, timeout=timeout, what=what)
        out = proc.stdout + proc.stderr
        if logfile is not None:
            with open(logfile, "a") as fh:
                fh.write(out)
        if proc.returncode != 0:
            tail = " | ".join(out.strip().splitlines()[-6:])
            raise RepoError(f"{what} failed (exit {proc.returncode}): {tail}"
                            + (f"; full log {logfile}" if logfile else ""))
        return proc.stdout


def _build_one(builder: _Builder, name: str, recipe: dict, pin: Source, key: str, work: Path,
               log: Log) -> dict:
    """Build recipe ``name`` in ``builder`` (work is mounted at /build/work); return build.json."""
    started = time.monotonic()
    logfile = work / "build.log"
    values = {"upstream": str(recipe["version"])}
    for fact, command in (recipe.get("facts") or {}).items():
        value = builder.sh(command, f"package recipe {name}: fact {fact}").strip()
        if not _FACT.fullmatch(value):
            raise RepoError(f"package recipe {name}: fact {fact} ({command!r}) gave {value!r}, "
                            "not a version-like word")
        values[fact] = value
    revision = _fmt(str(recipe.get("revision", "1")), values)
    values["version"] = f"{recipe['version']}-{revision}"
    arch = builder.sh("dpkg --print-architecture", f"package recipe {name}: architecture").strip()
    log(f"  building {name} {values['version']} from {pin.file} (log {logfile})")
    builder.sh(
        "rm -rf /build/src /build/work/root /build/work/out\n"
        "mkdir -p /build/src /build/work/root /build/work/out\n"
        f"tar -C /build/src --strip-components=1 -xzf /build/sources/{pin.file}\n"
        "cd /build/src\n"
        f"export ROOT=/build/work/root VERSION={values['version']} UPSTREAM_VERSION={recipe['version']}\n"
        "exec >>/build/work/build.log 2>&1\n"
        + "\n".join(f"mkdir -p \"$ROOT/{pkg}\"" for pkg in recipe["packages"]) + "\n"
        + recipe["build"],
        f"package recipe {name}: build", logfile)
    packages = {}
    for pkg, fields in recipe["packages"].items():
        root = work / "root" / pkg
        debian = root / "DEBIAN"
        debian.mkdir(parents=True, exist_ok=True)
        conffiles = sorted("/" + str(p.relative_to(root)) for p in (root / "etc").rglob("*")
                           if p.is_file() and not p.is_symlink()) if (root / "etc").is_dir() else []
        if conffiles:
            (debian / "conffiles").write_text("\n".join(conffiles) + "\n")
        for script in _SCRIPTS:
            if fields.get(script):
                (debian / script).write_text(fields[script])
                (debian / script).chmod(0o755)
        (debian / "control").write_text(control_file(pkg, fields, values, arch, _tree_size_kib(root),
                                                     _homepage(pin)))
        builder.sh(f"dpkg-deb --root-owner-group -Zxz --build /build/work/root/{_shq(pkg)} /build/work/out/",
                   f"package {pkg}: dpkg-deb", logfile)
        arch_of = "all" if fields.get("architecture") == "all" else arch
        packages[pkg] = {"version": values["version"], "file": f"{pkg}_{values['version']}_{arch_of}.deb"}
    for pkg, info in packages.items():
        if not (work / "out" / info["file"]).is_file():
            raise RepoError(f"package {pkg}: dpkg-deb made no {info['file']}")
    return {"recipe": name, "key": key, "source": pin.file, "sha256": pin.sha256, "facts": values,
            "packages": packages, "seconds": round(time.monotonic() - started, 1)}


def _shq(word: str) -> str:
    if not _NAME.fullmatch(word):
        raise RepoError(f"{word!r} is not a Debian package name")
    return word


def stale_facts(recipes: dict[str, dict], done: dict[str, dict], log: Log = _quiet) -> list[str]:
    """Cached builds whose facts the builder now answers otherwise (pyxis, when its Slurm changed).

    Asked only when the builder image exists (one short container run): without it, the
    builds are as good as the builder they came from.
    """
    asked = {n: r["facts"] for n, r in recipes.items() if r.get("facts") and n in done}
    if not asked:
        return []
    ref = f"localhost/{BUILDER_IMAGE}:{images.cached_key(builder_recipe(recipes))}"
    if images.image_id(ref) is None:
        return []
    script = "".join(f"printf '%s %s=%s\\n' {_shq(n)} {f} \"$({cmd})\"\n"
                     for n, facts in sorted(asked.items()) for f, cmd in sorted(facts.items()))
    proc = podman("run", "--rm", *_build_labels(), *RUN_OPTIONS, "--network", "none",
                  "--entrypoint", "/bin/sh", ref, "-ec", script, check=False, what="site repository: build facts")
    if proc.returncode != 0:
        raise RepoError(f"site repository: asking the builder for its facts failed: {proc.stderr.strip()[-300:]}")
    stale = set()
    for line in proc.stdout.splitlines():
        name, _, pair = line.partition(" ")
        fact, _, value = pair.partition("=")
        had = (done.get(name) or {}).get("facts", {}).get(fact)
        if had is not None and had != value:
            log(f"site repository: {name} was built for {fact} {had}, the builder now has {value}: rebuilding")
            stale.add(name)
    return sorted(stale)


def build_packages(sources: dict[str, Path], recipes: dict[str, dict] | None = None,
                   log: Log = _quiet) -> tuple[dict[str, dict], list[str]]:
    """Every recipe's packages, built where the cache has none for its key.

    Returns (recipe name -> its build.json, names built now). Builds run in one builder
    container with no network (what a build needs comes from the builder image and the
    verified source), one recipe after the other.
    """
    pins = pinned_sources()
    recipes = load_recipes(pins=pins) if recipes is None else recipes
    wheels = python_pins() if any(r.get("python") for r in recipes.values()) else {}

    def extra_of(name: str, recipe: dict) -> dict[str, str]:
        extra = {s: pins[s].sha256 for s in recipe.get("sources") or []}
        for wheel in recipe.get("python") or []:
            if wheel not in wheels:
                raise RepoError(f"package recipe {name}: python: {wheel!r} is not pinned in {DATA / 'python.yml'}")
            extra[wheel] = wheels[wheel].sha256
        return extra

    done: dict[str, dict] = {}
    todo = []
    for name, recipe in recipes.items():
        key = build_key(recipe, pins[recipe["source"]], extra_of(name, recipe))
        meta = builds_dir() / f"{name}-{key}" / "build.json"
        if meta.is_file():
            done[name] = json.loads(meta.read_text())
        else:
            todo.append((name, recipe, key))
    for name in stale_facts(recipes, done, log):
        todo.append((name, recipes[name], done.pop(name)["key"]))
    if not todo:
        return done, []
    builder = builder_image(recipes, log)
    needed = {s for n, r, _ in todo for s in [r["source"], *(r.get("sources") or [])]}
    missing = sorted(needed - set(sources))
    if missing:
        raise RepoError(f"site repository: the builds need {', '.join(missing)}, which were not fetched")
    srcdir = {sources[s].parent for s in needed}
    if len(srcdir) != 1:
        raise RepoError(f"sources are in several directories: {srcdir}")
    volumes = [f"{srcdir.pop()}:/build/sources:ro"]
    if any(r.get("python") for _, r, _ in todo):
        # the pinned Python distributions (build tools newer than Debian's, e.g. meson), at /build/python
        volumes.append(f"{python_distributions(www_dir() / 'python', log=log)[0].parent}:/build/python:ro")
    with tempfile.TemporaryDirectory(prefix="build-", dir=builds_dir()) as tmp:
        work = Path(tmp)
        with _Builder(builder.ref, [*volumes, f"{work}:/build/work"], log) as box:
            for name, recipe, key in todo:
                meta = _build_one(box, name, recipe, pins[recipe["source"]], key, work, log)
                final = builds_dir() / f"{name}-{key}"
                staging = work / f"result-{name}"
                staging.mkdir()
                for info in meta["packages"].values():
                    os.replace(work / "out" / info["file"], staging / info["file"])
                os.replace(work / "build.log", staging / "build.log")
                (staging / "build.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
                shutil.rmtree(final, ignore_errors=True)
                os.replace(staging, final)
                done[name] = meta
    # builds of older keys of the same recipes are no longer served
    current = {f"{n}-{m['key']}" for n, m in done.items()}
    for old in builds_dir().iterdir():
        if old.is_dir() and old.name not in current and old.name.rsplit("-", 1)[0] in recipes:
            shutil.rmtree(old, ignore_errors=True)
    return done, [n for n, _, _ in todo]


# ------------------------------------------------------------------ the served tree
def www_dir() -> Path:
    path = images.cache_dir() / "site" / "repo" / "www"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` where ``target`` is (the server may be reading the old one)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def apt_repository(builds: dict[str, dict], repo_image: str, log: Log = _quiet) -> Path:
    """``www/debian``: pool, Packages, a Release signed with the site repository's key.

    Made again only when the set of packages changes. The index and the signature are
    made with apt-ftparchive and gpg in a container of the repository's image; the key
    (ed25519, made once) stays in ``$XDG_CACHE_HOME/vcluster-lab/site/repo/gnupg`` (0700).
    """
    www = www_dir()
    target = www / "debian"
    debs = sorted((builds_dir() / f"{n}-{m['key']}" / info["file"])
                  for n, m in builds.items() for info in m["packages"].values())
    content = hashlib.sha256(json.dumps([APT_FORMAT, [str(d) for d in debs]]).encode()).hexdigest()
    stamp = target / ".content"
    if stamp.is_file() and stamp.read_text().strip() == content and (target / "dists" / SUITE / "InRelease").is_file():
        return target
    gnupg = images.cache_dir() / "site" / "repo" / "gnupg"
    gnupg.mkdir(parents=True, exist_ok=True)
    gnupg.chmod(0o700)
    staging = Path(tempfile.mkdtemp(prefix=".debian-new-", dir=www))
    pool = staging / "pool" / "main"
    pool.mkdir(parents=True)
    for deb in debs:
        os.link(deb, pool / deb.name)
    script = f"""
cd /repo
dists=dists/{SUITE}
# --arch amd64 lists the Architecture: all packages too
mkdir -p $dists/main/binary-amd64
apt-ftparchive --arch amd64 packages pool > $dists/main/binary-amd64/Packages
gzip -9nk $dists/main/binary-amd64/Packages
apt-ftparchive -o APT::FTPArchive::Release::Origin=vcluster-lab \\
  -o APT::FTPArchive::Release::Label="vcluster lab site repository" \\
  -o APT::FTPArchive::Release::Suite={SUITE} -o APT::FTPArchive::Release::Codename={SUITE} \\
  -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main \\
  release $dists > /tmp/Release
mv /tmp/Release $dists/Release
export GNUPGHOME=/gnupg
if ! gpg --batch --list-secret-keys 2>/dev/null | grep -q sec; then
  gpg --batch --passphrase '' --quick-gen-key "vcluster lab site repository <repo@vcluster-lab.invalid>" ed25519 sign never
fi
gpg --batch --yes --clearsign -o $dists/InRelease $dists/Release
gpg --batch --yes -abs -o $dists/Release.gpg $dists/Release
gpg --batch --export --armor > archive-key.asc
gpg --batch --export > archive-key.gpg
gpgconf --kill gpg-agent || true
chmod -R a+rX /repo
"""
    name = f"{images.CACHE_PREFIX}-build-{secrets.token_hex(4)}"
    try:
        proc = podman("run", "--rm", "--name", name, *_build_labels(), *RUN_OPTIONS,
                      "--network", "none", "-v", f"{staging}:/repo", "-v", f"{gnupg}:/gnupg",
                      "--entrypoint", "/bin/sh", repo_image, "-ec", script, check=False,
                      what="site repository: apt index")
        if proc.returncode != 0:
            raise RepoError("site repository: apt index and signature failed: "
                            + " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-6:]))
        (staging / ".content").write_text(content + "\n")
        staging.chmod(0o755)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"site repository: apt index of {len(debs)} package(s) signed ({SUITE} main)")
    return target


# ------------------------------------------------------------------ images for users
IMAGE_FORMAT = 1


_UENV_FILE = re.compile(r"(bin|share|lib|etc)(/[A-Za-z0-9_.+-]+)+")


def _check_uenv_spec(path: Path, name: str, spec: dict) -> None:
    """A uenv image: ``{kind: uenv, mount: /abs/path, description: ..., files: {rel/path: text}}``."""
    if not re.fullmatch(r"/[A-Za-z0-9_./-]+", str(spec.get("mount", ""))) or ".." in str(spec["mount"]):
        raise RepoError(f"{path}: {name}.mount: the image's absolute mount point, such as /user-environment")
    files = spec.get("files")
    if not isinstance(files, dict) or not files:
        raise RepoError(f"{path}: {name}.files: a mapping of relative path (under bin/, share/, lib/, etc/) to content")
    for rel, content in files.items():
        if not _UENV_FILE.fullmatch(str(rel)) or ".." in str(rel).split("/") or not isinstance(content, str):
            raise RepoError(f"{path}: {name}.files.{rel}: a relative path under bin/, share/, lib/ or etc/ "
                            "(letters, digits, '_', '.', '+', '-') and its text")


def image_specs(path: Path = DATA / "images.yml") -> dict[str, dict]:
    """The images to serve (name: {suite, packages}, or a uenv image: name: {kind: uenv, ...}), checked."""
    data = yaml.safe_load(path.read_text()) or {}
    for name, spec in data.items():
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", str(name)) or not isinstance(spec, dict):
            raise RepoError(f"{path}: {name!r}: an image name (lower case, digits, '.', '-') and a mapping")
        if spec.get("kind") == "uenv":
            _check_uenv_spec(path, name, spec)
            continue
        if not re.fullmatch(r"[a-z]+", str(spec.get("suite", ""))):
            raise RepoError(f"{path}: {name}.suite: a Debian suite name such as trixie")
        if not all(isinstance(p, str) and _NAME.fullmatch(p) for p in spec.get("packages") or []):
            raise RepoError(f"{path}: {name}.packages: a list of Debian package names")
    return data


def _image_key(spec: dict) -> str:
    mirror = images.debian_mirrors()[0]
    blob = json.dumps({"spec": spec, "mirror": mirror, "format": IMAGE_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _debootstrap(suite: str, packages: list[str], tarball: Path, log: Log) -> None:
    """A minbase root file system of ``suite`` as a tarball (debootstrap on the host, as the
    lab's base image is made: it mounts /proc in the tree, which a container cannot)."""
    mirror = images.debian_mirrors()[0]
    work = Path(tempfile.mkdtemp(prefix=f"image-{suite}-", dir=tarball.parent))
    logfile = tarball.with_suffix(".log")
    try:
        root = work / "root"
        include = [f"--include={','.join(packages)}"] if packages else []
        log(f"  debootstrap {suite} from {mirror} for a user image (log {logfile})")
        with open(logfile, "w") as out:
            proc = subprocess.run(["debootstrap", "--variant=minbase", *include, suite, str(root), mirror],
                                  stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = " | ".join(logfile.read_text(errors="replace").strip().splitlines()[-3:])
            raise RepoError(f"site repository: image of {suite}: debootstrap failed (exit {proc.returncode}): "
                            f"{tail}; see {logfile}")
        shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
        (root / "var/lib/apt/lists/partial").mkdir(parents=True)
        for deb in (root / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        partial = work / "rootfs.tar"
        proc = subprocess.run(["tar", "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*",
                               "--exclude=./sys/*", "-C", str(root), "-cf", str(partial), "."],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RepoError(f"site repository: packing the image of {suite} failed: {proc.stderr.strip()}")
        os.replace(partial, tarball)
    finally:
        images._umount_below(work)  # pylint: disable=protected-access
        shutil.rmtree(work, ignore_errors=True)


def _write_sums(sums: Path, files: list[tuple[str, Path]]) -> None:
    """``sums`` lists the checksum of each file as it is now (rewritten, atomically, when it says otherwise: a
    checksum file must never describe another build of its image)."""
    text = "".join(f"{sha256_file(path)}  {served}\n" for served, path in files)
    if sums.is_file() and sums.read_text() == text:
        return
    partial = sums.with_name(sums.name + ".part")
    partial.write_text(text)
    os.replace(partial, sums)


def build_images(log: Log = _quiet) -> dict[str, dict]:
    """Each image of images.yml as ``<name>.tar`` and ``<name>.sqsh`` in the cache; name -> paths.

    Under a lock: a lab starting, ``make molecule-images`` and the contract tests may prepare the repository at
    the same time, and two builds of one image (SquashFS is not byte-reproducible) must not end as one's image
    with the other's checksum."""
    with images._locked("site-repo-images"):  # pylint: disable=protected-access
        return _build_images(log)


def _build_images(log: Log) -> dict[str, dict]:
    specs = image_specs()
    cache = images.cache_dir() / "site" / "repo" / "images"
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, spec in sorted(specs.items()):
        if spec.get("kind") == "uenv":
            out[name] = _uenv_image(name, spec, cache, log)
            continue
        key = _image_key(spec)
        tarball, squash = cache / f"{name}-{key}.tar", cache / f"{name}-{key}.sqsh"
        if not squash.is_file():
            started = time.monotonic()
            if not tarball.is_file():
                _debootstrap(spec["suite"], list(spec.get("packages") or []), tarball, log)
            builder = builder_image(log=log)
            with _Builder(builder.ref, [f"{cache}:/build/images"], log) as box:
                box.sh(f"rm -rf /tmp/rootfs && mkdir /tmp/rootfs && tar -C /tmp/rootfs -xf /build/images/{tarball.name}\n"
                       f"mksquashfs /tmp/rootfs /build/images/{squash.name}.part -noappend -no-progress -quiet\n"
                       f"mv /build/images/{squash.name}.part /build/images/{squash.name}",
                       f"site repository: image {name}: mksquashfs")
            log(f"site repository: built image {name} ({spec['suite']}) in {time.monotonic() - started:.1f} s")
        sums = cache / f"{name}-{key}.sha256"
        _write_sums(sums, [(f"{name}.sqsh", squash), (f"{name}.tar", tarball)])
        for path in (tarball, squash, sums):
            path.chmod(0o644)
        out[name] = {"tar": tarball, "sqsh": squash, "sha256": sums, "suite": spec["suite"]}
    current = tuple(f"{name}-{_uenv_key(spec) if spec.get('kind') == 'uenv' else _image_key(spec)}."
                    for name, spec in specs.items())
    for old in cache.iterdir():
        if old.is_file() and not old.name.startswith(current):
            old.unlink()
    return out


def _uenv_key(spec: dict) -> str:
    blob = json.dumps({"spec": spec, "format": IMAGE_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _uenv_image(name: str, spec: dict, cache: Path, log: Log) -> dict:
    """A uenv image (SquashFS): the spec's files (executable under bin/) and ``meta/env.json``
    (name, description, mount point: what ``uenv`` reads from an image), built in the builder."""
    key = _uenv_key(spec)
    squash, sums = cache / f"{name}-{key}.sqsh", cache / f"{name}-{key}.sha256"
    if not squash.is_file():
        started = time.monotonic()
        tree = Path(tempfile.mkdtemp(prefix=f"uenv-{name}-", dir=cache))
        try:
            for rel, content in spec["files"].items():
                target = tree / "tree" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
                target.chmod(0o755 if rel.startswith("bin/") else 0o644)
            meta = tree / "tree" / "meta"
            meta.mkdir(parents=True)
            (meta / "env.json").write_text(json.dumps(
                {"name": name, "description": str(spec.get("description", "")), "mount": spec["mount"],
                 "views": {}}, indent=2) + "\n")
            for path in [tree, *tree.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)
            builder = builder_image(log=log)
            with _Builder(builder.ref, [f"{cache}:/build/images"], log) as box:
                box.sh(f"mksquashfs /build/images/{tree.name}/tree /build/images/{squash.name}.part "
                       "-noappend -no-progress -quiet -all-root\n"
                       f"mv /build/images/{squash.name}.part /build/images/{squash.name}",
                       f"site repository: uenv image {name}: mksquashfs")
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        log(f"site repository: built uenv image {name} in {time.monotonic() - started:.1f} s")
    _write_sums(sums, [(f"{name}.sqsh", squash)])
    for path in (squash, sums):
        path.chmod(0o644)
    return {"sqsh": squash, "sha256": sums, "kind": "uenv", "mount": spec["mount"]}


def serve_images(built: dict[str, dict], target: Path) -> None:
    """``www/images/<name>.{tar,sqsh}`` as links to the cached files (same file system)."""
    staging = Path(tempfile.mkdtemp(prefix=".images-new-", dir=target.parent))
    try:
        for name, paths in built.items():
            for kind in ("tar", "sqsh", "sha256"):
                if kind in paths:
                    os.link(paths[kind], staging / f"{name}.{kind}")
        staging.chmod(0o755)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------------ Python package index
def _normalise(project: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", project).lower()


def _project_of(filename: str) -> str:
    """The project a distribution file belongs to (wheel or sdist file name)."""
    if filename.endswith(".whl"):
        return _normalise(filename.split("-", 1)[0])
    stem = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", filename)
    return _normalise(stem.rsplit("-", 1)[0])


def python_index(files: list[Path], simple: Path, files_url: str = "../../python/") -> None:
    """Write a PEP 503 simple index of ``files`` into ``simple`` (links with #sha256=)."""
    projects: dict[str, list[Path]] = {}
    for path in files:
        projects.setdefault(_project_of(path.name), []).append(path)
    simple.mkdir(parents=True, exist_ok=True)
    root = ['<!DOCTYPE html>', '<html><head><meta name="pypi:repository-version" content="1.0">'
            '<title>Simple index</title></head><body>']
    for project in sorted(projects):
        root.append(f'<a href="{project}/">{project}</a><br>')
        page = ['<!DOCTYPE html>', f'<html><head><meta name="pypi:repository-version" content="1.0">'
                f'<title>Links for {project}</title></head><body>', f'<h1>Links for {project}</h1>']
        for path in sorted(projects[project], key=lambda p: p.name):
            href = html.escape(f"{files_url}{path.name}#sha256={sha256_file(path)}")
            page.append(f'<a href="{href}">{html.escape(path.name)}</a><br>')
        page.append("</body></html>")
        (simple / project).mkdir(exist_ok=True)
        (simple / project / "index.html").write_text("\n".join(page) + "\n")
    root.append("</body></html>")
    (simple / "index.html").write_text("\n".join(root) + "\n")


def python_pins(path: Path = DATA / "python.yml") -> dict[str, Source]:
    """The pinned Python distributions (file: {sha256, url}), by file name."""
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return {name: Source(name, str(item["sha256"]).lower(), str(item["url"])) for name, item in (data or {}).items()}


def python_distributions(dest: Path, path: Path = DATA / "python.yml", log: Log = _quiet) -> list[Path]:
    """The pinned Python distributions (file: {sha256, url}) in ``dest``, verified."""
    pins = python_pins(path)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name, pin in sorted(pins.items()):
        target = dest / name
        if not (target.is_file() and sha256_file(target) == pin.sha256):
            log(f"downloading {name} from {pin.url}")
            _download(pin.url, target, name)
            got = sha256_file(target)
            if got != pin.sha256:
                target.unlink()
                raise RepoError(f"site repository: Python distribution {name} from {pin.url} is corrupt: "
                                f"sha256 {got}, expected {pin.sha256} ({path})")
        target.chmod(0o644)
        out.append(target)
    return out


# ------------------------------------------------------------------ everything
def prepare(repo_image: str, log: Log = _quiet) -> Path:
    """Assemble the served tree: sources, packages (built if needed), Python index; its root."""
    root = www_dir()
    started = time.monotonic()
    sources = fetch_sources(root / "sources", log=log)
    builds, built = build_packages(sources, log=log)
    summary = ", ".join(f"{pkg} {info['version']}" for meta in builds.values()
                        for pkg, info in meta["packages"].items())
    if built:
        log(f"site repository: built {', '.join(built)} in {time.monotonic() - started:.1f} s; "
            f"{len(builds) - len(built)} cached")
    else:
        log(f"site repository: nothing to build, {len(builds)} source package(s) cached by source "
            f"checksum: {summary}")
    apt_repository(builds, repo_image, log)
    python_index(python_distributions(root / "python", log=log), root / "simple")
    serve_images(build_images(log), root / "images")
    (root / "index.html").write_text(
        "<html><head><title>vcluster lab site repository</title></head><body>\n"
        "<h1>vcluster lab site repository</h1>\n<ul>\n"
        '<li><a href="debian/">debian/</a>: apt repository (signed; key debian/archive-key.asc)</li>\n'
        '<li><a href="sources/">sources/</a>: upstream source archives</li>\n'
        '<li><a href="simple/">simple/</a>: Python package index (PEP 503)</li>\n'
        '<li><a href="images/">images/</a>: container images</li>\n'
        "</ul></body></html>\n")
    return root
