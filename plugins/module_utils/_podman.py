# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Building image-builder recipes into OCI images with podman, with provenance labels.

OpenCHAMI's image-builder runs buildah inside its own container and pushes to a registry.
Neither is needed here: the recipe is applied by running the parent image
(``podman run`` with ``sleep`` as its command), executing each step with ``podman exec``,
and committing the container (``podman commit --change 'CMD ["/sbin/init"]'``), which also
works where ``podman build`` cannot set its rlimits. The image is published locally
(``publish_local``) and optionally pushed (``publish_registry``).

Provenance is recorded as OCI labels: image-builder's own ``org.openchami.image.*`` labels,
plus ``io.vcluster.image.*``: the recipe's sha256 (over the recipe and the content of the
files it copies), the parent's digest, who built it, when, the recipe itself and where it
was pushed. The same recipe on the same parent digest is never built twice.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import secrets

RECIPE_FORMAT = 1
OCI = "org.openchami.image."
VC = "io.vcluster.image."
BUILD_LABEL = "io.vcluster.build"
#: Who asked for a build (an AWX job, a CI session): copied into the build container's
#: ``io.vcluster.build.owner`` label so a leftover container says whose it is.
BUILD_OWNER_ENV = "VCLUSTER_BUILD_OWNER"
INIT_CMD = 'CMD ["/sbin/init"]'
PKG_MANAGERS = ("apt", "dnf", "zypper")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PKG = re.compile(r"^[A-Za-z0-9@._+:~=<>*/-]+$")
_GROUP = re.compile(r"^[A-Za-z0-9@._+ -]+$")
_ALIAS = re.compile(r"^[A-Za-z0-9._-]+$")


class PodmanError(Exception):
    """A podman step failed; the message names the step and podman's last lines."""


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_list(value):
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [value]
    return list(value)


def shell_quote(word):
    return "'" + str(word).replace("'", "'\"'\"'") + "'"


def check_recipe(recipe):
    """Raise PodmanError for a recipe this builder cannot apply; returns the options mapping."""
    if not isinstance(recipe, dict):
        raise PodmanError("the recipe must be a mapping (image-builder config: options, packages, cmds, ...)")
    options = recipe.get("options") or {}
    if not isinstance(options, dict):
        raise PodmanError("recipe options must be a mapping")
    manager = options.get("pkg_manager") or "apt"
    if manager not in PKG_MANAGERS:
        raise PodmanError("recipe options.pkg_manager %r is not supported (use one of %s)"
                          % (manager, ", ".join(PKG_MANAGERS)))
    if options.get("layer_type") not in (None, "base"):
        raise PodmanError("recipe options.layer_type %r is not supported here: ansible layers need image-builder "
                          "itself (use cmds, or run a playbook against a booted node)" % options.get("layer_type"))
    for key in ("packages", "remove_packages", "package_groups"):
        for pkg in as_list(recipe.get(key)):
            if not (_GROUP if key == "package_groups" else _PKG).match(str(pkg)):
                raise PodmanError("recipe %s: %r is not a package name" % (key, pkg))
    for i, repo in enumerate(as_list(recipe.get("repos"))):
        if not isinstance(repo, dict) or not repo.get("alias") or not repo.get("url"):
            raise PodmanError("recipe repos[%d] needs alias and url" % i)
        if not _ALIAS.match(str(repo["alias"])):
            raise PodmanError("recipe repos[%d].alias %r may only hold letters, digits, '.', '_', '-'" % (i, repo["alias"]))
    for i, step in enumerate(as_list(recipe.get("cmds"))):
        if not isinstance(step, dict) or not isinstance(step.get("cmd"), str):
            raise PodmanError("recipe cmds[%d] must be a mapping with a 'cmd' string" % i)
    for i, item in enumerate(as_list(recipe.get("copyfiles"))):
        if not isinstance(item, dict) or not item.get("src") or not (item.get("dest") or item.get("dst")):
            raise PodmanError("recipe copyfiles[%d] needs src and dest" % i)
    return options


def recipe_sha256(recipe, base_dir=None):
    """sha256 of the recipe (canonical JSON) and of the content of every file it copies."""
    files = {}
    for item in as_list(recipe.get("copyfiles")):
        src = os.path.join(base_dir or ".", item["src"])
        try:
            with open(src, "rb") as handle:
                files[item["src"]] = hashlib.sha256(handle.read()).hexdigest()
        except (IOError, OSError) as exc:
            raise PodmanError("recipe copyfiles src %s: %s" % (src, exc.strerror or exc))
    blob = json.dumps({"recipe": recipe, "files": files, "format": RECIPE_FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def encode_recipe(recipe):
    """The recipe as a label value: base64 of its compact JSON (label values do not survive quotes well)."""
    blob = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    return base64.b64encode(blob).decode("ascii")


def decode_recipe(value):
    if not value:
        return None
    try:
        return json.loads(base64.b64decode(value).decode("utf-8"))
    except (ValueError, TypeError, UnicodeDecodeError):
        return value


def provenance(labels):
    """The provenance an image's labels record, as image_info returns it."""
    labels = labels or {}

    def split(value):
        return [v for v in (value or "").split(",") if v]

    recipe = decode_recipe(labels.get(VC + "recipe"))
    return {
        "recipe_sha256": labels.get(VC + "recipe-sha256", ""),
        "recipe": recipe,
        "parent": labels.get(OCI + "parent", ""),
        "parent_digest": labels.get(VC + "parent-digest", ""),
        "builder": labels.get(VC + "builder", ""),
        "build_date": labels.get(VC + "build-date") or labels.get(OCI + "build-date", ""),
        "build_host": labels.get(VC + "build-host", ""),
        "type": labels.get(OCI + "type", ""),
        "package_manager": labels.get(OCI + "package-manager", ""),
        "packages": split(labels.get(OCI + "packages")),
        "package_groups": split(labels.get(OCI + "package-groups")),
        "repositories": split(labels.get(OCI + "repositories")),
        "published": split(labels.get(VC + "published")),
    }


class Podman(object):
    """Runs podman through ``runner(argv, data=None) -> (rc, stdout, stderr)`` (AnsibleModule.run_command)."""

    def __init__(self, runner, binary="podman", containers_conf=None):
        self.runner = runner
        self.binary = binary
        self.environ = {"CONTAINERS_CONF": containers_conf} if containers_conf else {}

    def run(self, *argv, **kwargs):
        what = kwargs.pop("what", "podman")
        check = kwargs.pop("check", True)
        rc, out, err = self.runner([self.binary] + list(argv), environ_update=self.environ, **kwargs)
        if check and rc != 0:
            tail = " | ".join(((out or "") + (err or "")).strip().splitlines()[-5:])
            raise PodmanError("%s: podman %s failed (exit %d): %s" % (what, " ".join(argv[:2]), rc, tail))
        return rc, out, err

    def inspect(self, ref):
        rc, out, dummy = self.run("image", "inspect", ref, check=False, what="image %s" % ref)
        if rc != 0:
            return None
        data = json.loads(out or "[]")
        return data[0] if data else None

    def images(self, filters=()):
        args = ["images", "--format", "json"]
        for item in filters:
            args += ["--filter", item]
        out = self.run(*args, what="list images")[1]
        return json.loads(out or "[]") or []

    def tag(self, source, ref):
        self.run("tag", source, ref, what="tag %s" % ref)

    def untag(self, ref):
        """Remove one name (``podman untag IMAGE`` alone would remove every name of the image)."""
        self.run("untag", ref, ref, what="untag %s" % ref)

    def remove(self, ref):
        rc, dummy, err = self.run("rmi", ref, check=False, what="remove %s" % ref)
        if rc != 0 and "image is in use" not in (err or "") and "no such image" not in (err or "").lower():
            raise PodmanError("remove %s: %s" % (ref, (err or "").strip().splitlines()[-1:]))
        return rc == 0

    def pull(self, ref, opts=()):
        self.run("pull", "--quiet", *(list(opts) + [ref]), what="pull %s" % ref)

    def push(self, ref, dest, opts=()):
        self.run("push", *(list(opts) + [ref, dest]), what="push %s" % dest)


def image_labels(info):
    return (info.get("Config") or {}).get("Labels") or info.get("Labels") or {}


def image_id(info):
    return "sha256:" + str(info.get("Id", "")).replace("sha256:", "")


def _pm_script(manager, recipe, gpgcheck):
    """Shell steps (name, script) installing what the recipe asks with its package manager."""
    steps = []
    repos = as_list(recipe.get("repos"))
    packages = [str(p) for p in as_list(recipe.get("packages"))]
    groups = [str(p) for p in as_list(recipe.get("package_groups"))]
    removed = [str(p) for p in as_list(recipe.get("remove_packages"))]
    quote = shell_quote
    if manager == "apt":
        for repo in repos:
            trust = "" if gpgcheck else "[trusted=yes] "
            line = "deb %s%s" % (trust, repo["url"])
            steps.append(("repo %s" % repo["alias"], "printf '%%s\\n' %s > /etc/apt/sources.list.d/%s.list"
                          % (quote(line), repo["alias"])))
        if packages or groups:
            steps.append(("install %s" % ", ".join(packages + groups),
                          "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq "
                          "--no-install-recommends " + " ".join(quote(p) for p in packages + groups)))
        if removed:
            steps.append(("remove %s" % ", ".join(removed),
                          "export DEBIAN_FRONTEND=noninteractive; apt-get purge -y -qq " + " ".join(quote(p) for p in removed)
                          + " && apt-get autoremove -y -qq --purge"))
    elif manager == "dnf":
        nogpg = "" if gpgcheck else " --nogpgcheck"
        for repo in repos:
            text = "[%s]\nname=%s\nbaseurl=%s\nenabled=1\ngpgcheck=%d\n%s" % (
                repo["alias"], repo["alias"], repo["url"], 1 if (gpgcheck and repo.get("gpg")) else 0,
                "gpgkey=%s\n" % repo["gpg"] if repo.get("gpg") else "")
            steps.append(("repo %s" % repo["alias"], "printf '%%s' %s > /etc/yum.repos.d/%s.repo"
                          % (quote(text), repo["alias"])))
        if groups:
            steps.append(("install groups %s" % ", ".join(groups),
                          "dnf groupinstall -y%s " % nogpg + " ".join(quote(g) for g in groups)))
        if packages:
            steps.append(("install %s" % ", ".join(packages),
                          "dnf install -y%s " % nogpg + " ".join(quote(p) for p in packages)))
        if removed:
            steps.append(("remove %s" % ", ".join(removed), "dnf remove -y " + " ".join(quote(p) for p in removed)))
    else:
        nogpg = "" if gpgcheck else " --no-gpg-checks"
        for repo in repos:
            steps.append(("repo %s" % repo["alias"], "zypper --non-interactive addrepo -f %s %s"
                          % (quote(repo["url"]), quote(repo["alias"]))))
        if packages or groups:
            steps.append(("install %s" % ", ".join(packages + groups),
                          "zypper --non-interactive%s --gpg-auto-import-keys refresh && zypper --non-interactive%s install "
                          % (nogpg, nogpg) + " ".join(quote(p) for p in packages)
                          + "".join(" -t pattern " + quote(g) for g in groups)))
        if removed:
            steps.append(("remove %s" % ", ".join(removed), "zypper --non-interactive remove "
                          + " ".join(quote(p) for p in removed)))
    return steps


_PREPARE = {
    "apt": "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d",
}
_CLEAN = {
    "apt": "rm -f /usr/sbin/policy-rc.d; apt-get clean; rm -rf /var/lib/apt/lists/*",
    "dnf": "dnf clean all",
    "zypper": "zypper --non-interactive clean --all",
}


def build(podman, recipe, name, tags, parent_ref, parent_digest, sha, builder, build_host, base_dir=None,
          network="host", extra_run_args=(), published=(), log=None):
    """Build the recipe on ``parent_ref`` into ``localhost/<name>:<tag>``; returns the image id."""
    options = recipe.get("options") or {}
    manager = options.get("pkg_manager") or "apt"
    gpgcheck = options.get("gpgcheck", True) not in (False, "false", "False", 0)
    refs = ["localhost/%s:%s" % (name, tag) for tag in tags]
    container = "vcbuild-%s-%s" % (name[:40], secrets.token_hex(4))
    run_args = ["run", "-d", "--name", container, "--label", "%s=1" % BUILD_LABEL,
                "--label", "%s.image=%s" % (BUILD_LABEL, refs[0])]
    owner = os.environ.get(BUILD_OWNER_ENV, "")
    if owner:
        run_args += ["--label", "%s.owner=%s" % (BUILD_LABEL, owner)]
    if network:
        run_args += ["--network", network]
    run_args += list(extra_run_args) + ["--entrypoint", "/bin/sleep", parent_ref, "infinity"]
    podman.run(*run_args, what="%s: build container" % refs[0])
    try:
        steps = []
        if manager in _PREPARE:
            steps.append(("prepare", _PREPARE[manager]))
        steps += _pm_script(manager, recipe, gpgcheck)
        for item in as_list(recipe.get("copyfiles")):
            steps.append(("copy", item))
        for i, step in enumerate(as_list(recipe.get("cmds"))):
            steps.append(("cmds[%d] %s" % (i, step["cmd"][:60]), step["cmd"]))
        steps.append(("clean", _CLEAN[manager] + "; rm -f /etc/ssh/ssh_host_*; : > /etc/machine-id"))
        for what, script in steps:
            if log:
                log("%s: %s" % (refs[0], what))
            if what == "copy":
                src = os.path.join(base_dir or ".", script["src"])
                dest = script.get("dest") or script.get("dst")
                podman.run("cp", src, "%s:%s" % (container, dest), what="%s: copy %s to %s" % (refs[0], src, dest))
                continue
            podman.run("exec", "-e", "DEBIAN_FRONTEND=noninteractive", container, "/bin/sh", "-ec", script + " 2>&1",
                       what="%s: %s" % (refs[0], what))
        date = now()
        labels = {
            OCI + "name": name,
            OCI + "type": options.get("layer_type") or "base",
            OCI + "parent": options.get("parent") or parent_ref,
            OCI + "package-manager": manager,
            OCI + "tags": ",".join(tags),
            OCI + "build-date": date,
            OCI + "repositories": ",".join(str(r["url"]) for r in as_list(recipe.get("repos"))),
            OCI + "packages": ",".join(str(p) for p in as_list(recipe.get("packages"))),
            OCI + "package-groups": ",".join(str(p) for p in as_list(recipe.get("package_groups"))),
            VC + "recipe-sha256": sha,
            VC + "recipe": encode_recipe(recipe),
            VC + "parent-digest": parent_digest,
            VC + "builder": builder,
            VC + "build-host": build_host,
            VC + "build-date": date,
            VC + "published": ",".join(published),
        }
        for key, value in (options.get("labels") or {}).items():
            labels[str(key)] = str(value)
        args = ["commit", "--quiet", "--change", INIT_CMD, "--change", "ENTRYPOINT []"]
        for key, value in sorted(labels.items()):
            args += ["--change", "LABEL %s=%s" % (key, json.dumps(value))]
        podman.run(*(args + [container, refs[0]]), what="%s: commit" % refs[0])
        for ref in refs[1:]:
            podman.tag(refs[0], ref)
    finally:
        podman.run("rm", "-f", "-t", "0", container, check=False, what=container)
    info = podman.inspect(refs[0])
    return image_id(info) if info else ""


def find_built(podman, name, sha, parent_digest):
    """Id of a local image of ``name`` built from this recipe on this parent, or None."""
    for row in podman.images(["label=%srecipe-sha256=%s" % (VC, sha), "label=%sname=%s" % (OCI, name)]):
        labels = row.get("Labels") or {}
        if labels.get(VC + "recipe-sha256") == sha and labels.get(VC + "parent-digest") == parent_digest:
            return "sha256:" + str(row.get("Id", "")).replace("sha256:", "")
    return None


def valid_name(name):
    return bool(name) and bool(_NAME.match(name))


def valid_tag(tag):
    return bool(tag) and bool(_TAG.match(tag))
