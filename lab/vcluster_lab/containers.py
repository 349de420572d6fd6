"""Running podman the lab's way: the project's containers.conf, runc, clear errors.

Every podman call of the lab goes through :func:`podman`, so that ``CONTAINERS_CONF``
points at ``lab/containers.conf`` (the sandbox refuses podman's default ulimits) whatever
the caller's environment says, and so that a failure carries podman's own stderr.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from .nodes.base import DriverError

#: Every object the lab makes carries this label (architecture.md, "The lab").
LAB_LABEL = "io.vcluster.lab"
#: Which lab instance made it: lets a test lab and a developer's lab share the machine.
PREFIX_LABEL = "io.vcluster.lab.prefix"
#: On node containers only (value: the prefix). Containers inherit their image's labels,
#: so io.vcluster.lab=1 alone would also match anyone's container run from a lab image.
NODE_LABEL = "io.vcluster.lab.node"
XNAME_LABEL = "io.vcluster.lab.xname"
DEFAULT_PREFIX = "vclab"
#: Options every node and build container gets (see docs/lab-host-notes).
RUN_OPTIONS = ("--runtime", "runc", "--ulimit", "host")


class PodmanError(DriverError):
    """A podman command failed; ``stderr`` is podman's own explanation."""

    def __init__(self, what: str, argv: list[str], returncode: int, stderr: str):
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr.strip()
        detail = self.stderr.splitlines()[-1] if self.stderr else f"exit status {returncode}"
        words = []
        for arg in argv[:2]:
            if arg.startswith("-"):
                break
            words.append(arg)
        super().__init__(f"{what}: podman {' '.join(words)} failed: {detail}")


def containers_conf() -> Path:
    """The project's containers.conf: ``lab/containers.conf`` next to this package."""
    path = Path(__file__).resolve().parent.parent / "containers.conf"
    if not path.is_file():
        raise DriverError(
            f"{path} is missing: vcluster-lab runs from a checkout of hpc.vcluster "
            "(pip install -e lab), whose lab/containers.conf podman needs on this machine")
    return path


def podman_env() -> dict[str, str]:
    """The environment for podman subprocesses."""
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(containers_conf())
    return env


def podman(*argv: str, what: str = "podman", input: bytes | str | None = None,
           check: bool = True, timeout: float | None = 600,
           stdin=None) -> subprocess.CompletedProcess:
    """Run ``podman argv...``; raise :class:`PodmanError` (naming ``what``) when it fails."""
    exe = shutil.which("podman")
    if exe is None:
        raise DriverError(f"{what}: podman is not installed (apt-get install podman runc)")
    args = list(argv)
    text = not isinstance(input, bytes)
    try:
        proc = subprocess.run(
            [exe, *args], input=input, stdin=stdin, capture_output=True, text=text,
            env=podman_env(), timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PodmanError(what, args, -1, f"timed out after {timeout} s") from exc
    if check and proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode(errors="replace")
        raise PodmanError(what, args, proc.returncode, err)
    return proc


def podman_json(*argv: str, what: str = "podman") -> list | dict:
    """Run a podman command whose output is JSON and decode it."""
    out = podman(*argv, what=what).stdout.strip()
    return json.loads(out) if out else []


def lab_prefix() -> str:
    """The lab instance prefix: ``$VCLUSTER_LAB_PREFIX`` or ``vclab``."""
    prefix = os.environ.get("VCLUSTER_LAB_PREFIX", DEFAULT_PREFIX)
    if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", prefix):
        raise DriverError(
            f"VCLUSTER_LAB_PREFIX={prefix!r} is not a valid lab prefix "
            "(lower-case letters and digits, starting with a letter, at most 16)")
    return prefix


def lab_labels(prefix: str) -> list[str]:
    """The ``--label`` arguments that mark an object as made by lab ``prefix``."""
    return ["--label", f"{LAB_LABEL}=1", "--label", f"{PREFIX_LABEL}={prefix}"]


def lab_filter(prefix: str) -> list[str]:
    """The ``--filter`` that finds what lab ``prefix`` made (podman ORs repeated label
    filters, so callers check ``io.vcluster.lab=1`` in the rows themselves)."""
    return ["--filter", f"label={PREFIX_LABEL}={prefix}"]


def is_lab_row(labels: dict | None, prefix: str) -> bool:
    """Whether a podman listing row's labels say lab ``prefix`` made it."""
    labels = labels or {}
    return labels.get(LAB_LABEL) == "1" and labels.get(PREFIX_LABEL) == prefix


def image_id(ref: str) -> str | None:
    """The full id (``sha256:...``) of a local image, or None when it does not exist."""
    proc = podman("image", "inspect", "--format", "{{.Id}}", ref, check=False,
                  what=f"image {ref}")
    if proc.returncode != 0:
        return None
    return "sha256:" + proc.stdout.strip().removeprefix("sha256:")


def wait_systemd(container: str, deadline: float, what: str) -> str:
    """Wait until systemd in ``container`` has booted; its state (``running``/``degraded``).

    Right after the start, systemd's bus is not there yet: ask again until it is, or until
    ``deadline`` (a ``time.monotonic()`` value), then raise naming ``what``.
    """
    started = time.monotonic()
    while True:
        left = max(1.0, deadline - time.monotonic())
        proc = podman("exec", container, "timeout", str(int(left)), "systemctl", "is-system-running", "--wait",
                      check=False, timeout=left + 10, what=f"{what}: boot")
        state = proc.stdout.strip()
        if state in ("running", "degraded"):
            return state
        if time.monotonic() > deadline:
            raise DriverError(f"{what}: systemd is {state or 'not answering'} after "
                              f"{time.monotonic() - started:.0f} s ({proc.stderr.strip()[-200:]})")
        time.sleep(0.2)
