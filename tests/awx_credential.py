"""What AWX does with a credential type, for tests that cannot run AWX.

AWX (awx/main/models/credential) checks a credential's inputs against its type (required
fields, choices, booleans), then renders the type's injectors in a sandboxed Jinja
environment: file templates first (each written to a 0600 file in the job's private
directory, its path offered as ``tower.filename.<name>``), then the env templates. An input
that was not given is undefined, which renders as an empty string; a boolean that was not
given is false. Types are validated when they are saved: a template may only name the
type's fields and files, and variables AWX keeps for itself cannot be injected.

This module does the same in a few lines, so that a test can build exactly the
environment a job of that credential would get.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: Environment variables AWX refuses to let a credential type inject (besides ANSIBLE_*).
RESERVED_ENV = {"PATH", "PYTHONPATH", "HOME", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID",
                "INVENTORY_UPDATE_ID", "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH",
                "SUPERVISOR_WEB_CONFIG_PATH", "MAX_EVENT_RES", "CALLBACK_QUEUE", "CALLBACK_CONNECTION",
                "CACHE", "JOB_CALLBACK_DEBUG", "RUNNER_OMIT_EVENTS", "RUNNER_ONLY_FAILED_EVENTS"}


class CredentialError(ValueError):
    """A credential AWX would refuse to save; the message names the input."""


class _Namespace:
    pass


def check_type(ctype: dict) -> None:
    """Raise CredentialError where AWX would refuse to save the credential type."""
    fields = ctype["inputs"]["fields"]
    ids = [f["id"] for f in fields]
    if len(ids) != len(set(ids)):
        raise CredentialError(f"{ctype['name']}: duplicate input ids")
    for field in fields:
        if field.get("type", "string") not in ("string", "boolean"):
            raise CredentialError(f"{ctype['name']}: {field['id']}: type must be string or boolean")
        if field.get("type") == "boolean" and (field.get("secret") or field.get("multiline") or field.get("choices")):
            raise CredentialError(f"{ctype['name']}: {field['id']}: a boolean cannot be secret, multiline or a choice")
    missing = set(ctype["inputs"].get("required", [])) - set(ids)
    if missing:
        raise CredentialError(f"{ctype['name']}: required names unknown inputs {sorted(missing)}")
    files = [name.split(".", 1)[1] for name in ctype["injectors"].get("file", {})]
    namespace = {field_id: "EXAMPLE" for field_id in ids}
    tower = _Namespace()
    tower.filename = _Namespace()
    for name in files:
        setattr(tower.filename, name, "/runner/env/EXAMPLE")
    namespace["tower"] = tower
    strict = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    for kind, templates in ctype["injectors"].items():
        for key, template in templates.items():
            if kind == "env" and (key.startswith("ANSIBLE_") or key in RESERVED_ENV):
                raise CredentialError(f"{ctype['name']}: {key} is reserved by AWX")
            strict.from_string(template).render(**namespace)  # UndefinedError names the unknown input


def check_inputs(ctype: dict, inputs: dict) -> None:
    """Raise CredentialError where AWX would refuse to save a credential with ``inputs``."""
    fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
    for key, value in inputs.items():
        if key not in fields:
            raise CredentialError(f"{key}: not an input of {ctype['name']}")
        field = fields[key]
        if field.get("type") == "boolean" and not isinstance(value, bool):
            raise CredentialError(f"{key}: must be a boolean")
        if field.get("type", "string") == "string" and not isinstance(value, str):
            raise CredentialError(f"{key}: must be a string")
        if field.get("choices") and value not in field["choices"]:
            raise CredentialError(f"{key}: must be one of {', '.join(field['choices'])}")
    for key in ctype["inputs"].get("required", []):
        if inputs.get(key) in (None, ""):
            raise CredentialError(f"{key}: required for {ctype['name']}")


def inject(ctype: dict, inputs: dict, private_data_dir: Path) -> dict:
    """The environment a job gets from a credential of ``ctype`` with ``inputs``.

    Files are written under ``<private_data_dir>/env`` (0600), as AWX writes them.
    """
    check_inputs(ctype, inputs)
    namespace = {key: value for key, value in inputs.items() if isinstance(value, bool) or len(value)}
    for field in ctype["inputs"]["fields"]:
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = False
    sandbox = ImmutableSandboxedEnvironment()
    tower = _Namespace()
    env_dir = Path(private_data_dir) / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    for label, template in ctype["injectors"].get("file", {}).items():
        fd, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(fd, "w") as handle:
            handle.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, 0o600)
        if "." not in label:
            tower.filename = path
        else:
            if not hasattr(tower, "filename"):
                tower.filename = _Namespace()
            setattr(tower.filename, label.split(".", 1)[1], path)
    namespace["tower"] = tower
    return {key: sandbox.from_string(template).render(**namespace)
            for key, template in ctype["injectors"].get("env", {}).items()}
