"""Which podman image a node boots: read from its BSS boot parameters.

A real node PXE-boots, asks BSS for its script and loads the kernel, initrd and root
file system the parameters name. A lab node is a container, so the lab reads the same
parameters and maps them to a podman image (docs/architecture.md "Boot"):

* ``.../boot-images/<uuid>/...`` (what BOS writes from an IMS manifest, e.g.
  ``s3://boot-images/<id>/kernel``) is an IMS image id; its record names the podman image
  (``metadata["vclab.podman_ref"]``);
* ``.../boot-images/<name>/<tag>/...`` is the podman image ``localhost/<name>:<tag>``
  (a leading ``efi-images/`` segment, as image-builder publishes kernels, is skipped).

The ``kernel`` URL is read first, then the ``root=`` kernel parameter. Parameters are
looked up as BSS does for a booting node: by xname, then MAC, then NID, then the node's
role tag (``Compute``...), then ``Default``. A node with no parameters cannot boot (a
real one would sit in its iPXE retry loop), which is a clear error here.
"""
from __future__ import annotations

import re
import sqlite3

from .store import Store

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_SEGMENTS = re.compile(r"boot-images/([^\s]*)")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")


class BootError(Exception):
    """The node cannot boot; the message says what an operator would see or fix."""


def lookup_params(conn: sqlite3.Connection, xname: str, mac: str = "", nid: int | None = None,
                  role: str = "") -> dict | None:
    """The node's BSS boot config (kernel, initrd, params), as BSS resolves it at boot."""
    keys = [("host", xname)]
    if mac:
        keys.append(("mac", mac.lower()))
    if nid is not None:
        keys.append(("nid", str(nid)))
    if role:
        keys.append(("host", role))
    keys.append(("host", "Default"))
    for kind, value in keys:
        row = conn.execute(
            "SELECT c.kernel, c.initrd, c.params FROM boot_keys k JOIN boot_configs c ON c.id=k.config_id "
            "WHERE k.kind=? AND k.value=?", (kind, value)).fetchone()
        if row:
            return {"kernel": row[0], "initrd": row[1], "params": row[2]}
    return None


def _root_param(params: str) -> str:
    for word in (params or "").split():
        if word.startswith("root="):
            return word[5:]
    return ""


def image_reference(url: str) -> tuple[str, str] | None:
    """('ims', id) or ('podman', ref) named by a boot URL, or None if it names neither."""
    m = _SEGMENTS.search(url or "")
    if not m:
        return None
    parts = [p for p in re.split(r"[/:]", m.group(1)) if p]
    if parts and parts[0] == "efi-images":
        parts = parts[1:]
    if parts and UUID.match(parts[0]):
        return "ims", parts[0]
    if len(parts) >= 3 and _NAME.match(parts[0]) and _TAG.match(parts[1]):
        return "podman", f"localhost/{parts[0]}:{parts[1]}"
    return None


def resolve_image(store: Store, params: dict) -> str:
    """The podman image the boot parameters name; BootError when they name none."""
    for source in (params.get("kernel", ""), _root_param(params.get("params", ""))):
        ref = image_reference(source)
        if ref is None:
            continue
        kind, value = ref
        if kind == "podman":
            return value
        image = store.doc_get("ims.image", value)
        if image is None:
            raise BootError(f"IMS image {value} named by the boot parameters does not exist")
        podman_ref = (image.get("metadata") or {}).get("vclab.podman_ref")
        if not podman_ref:
            raise BootError(f"IMS image {value} has no bootable artifact (metadata vclab.podman_ref)")
        return podman_ref
    raise BootError("boot parameters name no image: kernel must be .../boot-images/<name>/<tag>/... "
                    "or .../boot-images/<ims-image-id>/...")


def node_image(store: Store, xname: str, mac: str = "", nid: int | None = None, role: str = "") -> str:
    """The podman image ``xname`` boots now, or BootError."""
    with store.read() as conn:
        params = lookup_params(conn, xname, mac, nid, role)
    if params is None:
        raise BootError(f"no boot parameters for {xname} in BSS: the node would wait in iPXE")
    return resolve_image(store, params)
