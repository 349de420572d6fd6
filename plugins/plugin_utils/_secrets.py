# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets of a manifest: references that travel, values that are read only where used.

A manifest names a secret (``{secret: {env: ...}}``, ``{secret: {file: ...}}``,
``!vault``, ``{secret: {lookup: ...}}``); validation, the plan and the facts of the deploy
carry that reference, never the value. The value is read on the controller twice, in
memory only: by ``hpc.vcluster.vcluster_manifest`` to check it against the role's contract,
and by the ``hpc.vcluster.secret`` lookup in the task that hands the vService its
variables (``no_log``). Both go through ``resolve`` here.
"""
from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.parsing.vault import EncryptedString, VaultHelper
from ansible.plugins.loader import lookup_loader

try:
    from ansible._internal._datatag._tags import Origin
except ImportError:  # pragma: no cover - older ansible-core: no origin tags
    Origin = None

#: A secret file is small (a key, a password).
MAX_SECRET_BYTES = 64 * 1024


class SecretError(Exception):
    """A secret cannot be read; the message never holds its value."""


def to_reference(value):
    """An Ansible vault value (``!vault`` in a vars file) as a secret reference, without decrypting it."""
    try:
        ciphertext = VaultHelper.get_ciphertext(value, with_tags=False)
    except Exception:  # pylint: disable=broad-except  # an undecryptable marker: not our business here
        ciphertext = None
    if ciphertext:
        return {"secret": {"vault": str(ciphertext)}}
    return value


def origin_of(value):
    """``file:line:col`` of a value Ansible loaded, when it knows."""
    if Origin is None:
        return None
    try:
        tag = Origin.get_tag(value)
    except Exception:  # pylint: disable=broad-except
        return None
    return str(tag) if tag is not None and tag.path else None


def absolute_file(path, base_dir):
    """A secret file's path, relative ones taken from ``base_dir`` (the manifest's directory)."""
    path = os.path.expanduser(path)
    return os.path.normpath(path if os.path.isabs(path) or not base_dir else os.path.join(base_dir, path))


def file_problem(path, allowed_dirs):
    """Why ``path`` may not be read as a secret, or None: it must be a file inside one of ``allowed_dirs``."""
    real = os.path.realpath(path)
    dirs = [os.path.realpath(d) for d in allowed_dirs if d]
    if not any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in dirs):
        return ("secret.file: %s is outside the directories this site keeps manifest secrets in (%s)" % (
            path, ", ".join(dirs) or "none"))
    if not os.path.isfile(real):
        return "secret.file: %s is not a file" % path
    return None


def resolve(ref, loader=None, templar=None, variables=None):
    """The value of a secret reference (a str), read now. Raises SecretError without quoting it."""
    if "env" in ref:
        value = os.environ.get(ref["env"])
        if value is None or value == "":
            raise SecretError("secret.env: %s is not set on the controller" % ref["env"])
        return value
    if "file" in ref:
        try:
            with open(ref["file"], "rb") as handle:
                data = handle.read(MAX_SECRET_BYTES + 1)
        except (IOError, OSError) as exc:
            raise SecretError("secret.file: %s cannot be read: %s" % (ref["file"], exc.strerror or type(exc).__name__))
        if len(data) > MAX_SECRET_BYTES:
            raise SecretError("secret.file: %s is larger than %d bytes" % (ref["file"], MAX_SECRET_BYTES))
        try:
            return data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise SecretError("secret.file: %s is not UTF-8 text" % ref["file"])
    if "vault" in ref:
        try:
            return str(EncryptedString(ciphertext=str(ref["vault"]).strip() + "\n"))
        except Exception as exc:  # pylint: disable=broad-except  # AnsibleVaultError, missing vault secrets...
            raise SecretError("secret.vault: cannot be decrypted on the controller (%s): give the vault password "
                              "(--vault-id, --ask-vault-pass)" % type(exc).__name__)
    if "lookup" in ref:
        try:
            plugin = lookup_loader.get(ref["lookup"], loader=loader, templar=templar)
        except AnsibleError as exc:
            plugin = None
        if plugin is None:
            raise SecretError("secret.lookup: there is no lookup plugin %s on the controller" % ref["lookup"])
        try:
            values = plugin.run(list(ref.get("terms") or []), variables=variables or {})
        except Exception as exc:  # pylint: disable=broad-except  # any plugin error; its text may hold the value
            raise SecretError("secret.lookup: %s failed (%s)" % (ref["lookup"], type(exc).__name__))
        if not values or not isinstance(values[0], str):
            raise SecretError("secret.lookup: %s returned no text" % ref["lookup"])
        return str(values[0])
    raise SecretError("not a secret reference")
