# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""External vService roles, pinned: the version a manifest names is the code that runs.

``ansible-galaxy role install`` skips a role that is already installed (with a warning),
so changing ``source.version`` in a manifest used to change nothing. Here a role is kept
per commit in a controller-side cache, as a git checkout:

* ``<cache>/mirrors/<sha256 of the URL>.git``: a bare mirror, fetched from the URL with
  git restricted to the site's transports (``GIT_ALLOW_PROTOCOL``), no prompts, no
  submodules;
* the version (tag, branch or commit) is resolved in the mirror to a commit;
* ``<cache>/roles/<commit>/<name>``: a checkout of exactly that commit, made once and
  verified on every use (HEAD is the commit, nothing modified or added), else made again.

The deploy then includes the role by that path. A new version is a new directory, so a
change of version is a change (reported), and going back to an old version uses the old
directory again. The URL and version were checked by the manifest rules before git sees
them (no option-like values, only allowed transports).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile

#: git's own transports for each scheme a site may allow.
PROTOCOLS = {"https": ["https"], "ssh": ["ssh"], "file": ["file"], "http": ["http"], "git": ["git"]}
TIMEOUT = 300


class SourceError(Exception):
    """An external role could not be fetched or verified."""


def default_cache():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hpc.vcluster", "vservices")


def _git(args, cwd=None, protocols=None):
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes", "LC_ALL": "C"})
    if protocols is not None:
        env["GIT_ALLOW_PROTOCOL"] = ":".join(protocols)
    try:
        proc = subprocess.run(["git", "-c", "advice.detachedHead=false", "-c", "submodule.recurse=false",
                               "-c", "core.hooksPath=/dev/null"] + list(args), cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise SourceError("git is not installed on the controller")
    except subprocess.TimeoutExpired:
        raise SourceError("git %s took longer than %d s" % (args[0], TIMEOUT))
    return proc


def _last_line(proc):
    lines = [line for line in (proc.stderr or proc.stdout or "").splitlines() if line.strip()]
    return (lines[-1] if lines else "exit %d" % proc.returncode)[:300]


def resolve(mirror, version):
    """The commit a tag, branch or commit names in ``mirror``, or None."""
    for ref in ("refs/tags/%s^{commit}" % version, "refs/heads/%s^{commit}" % version, "%s^{commit}" % version):
        proc = _git(["-C", mirror, "rev-parse", "--verify", "--quiet", "--end-of-options", ref])
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return None


def verify(role_dir, commit):
    """Whether ``role_dir`` is a clean checkout of ``commit``: nothing modified, nothing added.

    Added files count too (Ansible would load a ``vars/main.yml`` or ``library/`` that
    appeared there), except Python's byte-code caches.
    """
    if not os.path.isdir(os.path.join(role_dir, ".git")):
        return False
    head = _git(["-C", role_dir, "rev-parse", "HEAD"])
    status = _git(["-C", role_dir, "status", "--porcelain", "--ignored", "--untracked-files=all"])
    changes = [line for line in status.stdout.splitlines()
               if line.strip() and "__pycache__/" not in line and not line.endswith(".pyc")]
    return head.returncode == 0 and head.stdout.strip() == commit and status.returncode == 0 and not changes


def fetch(name, url, version, cache=None, schemes=("https", "ssh")):
    """``{"path", "commit", "changed"}`` of the role ``name`` at ``version`` of ``url``; SourceError otherwise."""
    cache = os.path.abspath(cache or default_cache())
    protocols = sorted(set(p for s in schemes for p in PROTOCOLS.get(s, [])))
    try:
        os.makedirs(os.path.join(cache, "mirrors"), exist_ok=True)
        os.makedirs(os.path.join(cache, "roles"), exist_ok=True)
    except OSError as exc:
        raise SourceError("cannot create the vService cache %s: %s" % (cache, exc.strerror or exc))
    with open(os.path.join(cache, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _fetch_locked(name, url, version, cache, protocols)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fetch_locked(name, url, version, cache, protocols):
    mirror = os.path.join(cache, "mirrors", hashlib.sha256(url.encode("utf-8")).hexdigest()[:32] + ".git")
    if not os.path.isdir(mirror):
        proc = _git(["init", "--quiet", "--bare", mirror])
        if proc.returncode != 0:
            raise SourceError("cannot make a mirror in %s: %s" % (mirror, _last_line(proc)))
    proc = _git(["-C", mirror, "fetch", "--quiet", "--prune", "--force", "--no-recurse-submodules", url,
                 "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], protocols=protocols)
    if proc.returncode != 0:
        raise SourceError("cannot fetch %s: %s" % (url, _last_line(proc)))
    commit = resolve(mirror, version)
    if commit is None:
        raise SourceError("%s has no tag, branch or commit %s" % (url, version))
    role_dir = os.path.join(cache, "roles", commit, name)
    if verify(role_dir, commit):
        return {"path": role_dir, "commit": commit, "changed": False}
    parent = os.path.dirname(role_dir)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".%s-" % name, dir=parent)
    try:
        checkout = os.path.join(work, name)
        for args in (["clone", "--quiet", "--no-checkout", "--no-hardlinks", mirror, checkout],
                     ["-C", checkout, "checkout", "--quiet", "--detach", commit]):
            proc = _git(args)
            if proc.returncode != 0:
                raise SourceError("cannot check out %s of %s: %s" % (version, url, _last_line(proc)))
        if not verify(checkout, commit):
            raise SourceError("the checkout of %s at %s is not commit %s" % (url, version, commit))
        if os.path.exists(role_dir):
            shutil.rmtree(role_dir)
        os.rename(checkout, role_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not verify(role_dir, commit):
        raise SourceError("the role in %s is not commit %s of %s" % (role_dir, commit, url))
    return {"path": role_dir, "commit": commit, "changed": True}
