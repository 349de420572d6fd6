# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot artifact URLs of an image, and which image a node's boot parameters name.

Conventions (docs/boot-and-power.md):

* an image by name and tag (OpenCHAMI image-builder or a local podman build) lives under
  ``<images_url>/<name>/<tag>/``: ``vmlinuz``, ``initramfs.img`` and ``rootfs.squashfs``,
  booted with ``root=live:<images_url>/<name>/<tag>/rootfs.squashfs``;
* an IMS image (CSM) is ``s3://boot-images/<id>/kernel``, ``.../initrd`` and
  ``root=craycps-s3:s3://boot-images/<id>/rootfs``, as BOS writes it from the image's
  manifest.

``images_url`` defaults to ``s3://boot-images`` on CSM and ``<api_url>/boot-images`` on
OpenCHAMI; sites whose S3 is elsewhere (the OpenCHAMI tutorial's
``http://demo.openchami.cluster:9000/boot-images``) set it, or ``VCLUSTER_BOOT_IMAGES_URL``.
"""
from __future__ import annotations

import re

from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError

IMS_BUCKET = "s3://boot-images"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SEGMENTS = re.compile(r"boot-images/(\S*)")


def default_images_url(site):
    return IMS_BUCKET if site.kind == "csm" else site.api_url + "/boot-images"


def image_boot_artifacts(image, site):
    """``{kernel, initrd, root}`` for an ``image`` option (``id``, or ``name`` + ``tag``)."""
    image_id = image.get("id")
    if image_id:
        if not _UUID.match(image_id):
            raise SiteError("image.id %r is not an IMS image id (a UUID)" % image_id)
        base = "%s/%s" % (IMS_BUCKET, image_id)
        return {"kernel": base + "/kernel", "initrd": base + "/initrd", "root": "craycps-s3:%s/rootfs" % base}
    name, tag = image.get("name"), image.get("tag") or "latest"
    if not name:
        raise SiteError("image needs id, or name (and tag)")
    if not _NAME.match(name):
        raise SiteError("image.name %r is not a valid image name (lower case letters, digits, '.', '_', '-')" % name)
    if not _TAG.match(tag):
        raise SiteError("image.tag %r is not a valid image tag" % tag)
    base = "%s/%s/%s" % ((image.get("url_base") or default_images_url(site)).rstrip("/"), name, tag)
    return {"kernel": base + "/vmlinuz", "initrd": base + "/initramfs.img", "root": "live:%s/rootfs.squashfs" % base}


def normalize_params(params):
    return " ".join((params or "").split())


def set_param(params, key, value):
    """``params`` with ``key=value`` replacing any ``key=...`` word (appended when absent)."""
    words = normalize_params(params).split(" ") if params else []
    out, done = [], False
    for word in words:
        if word == key or word.startswith(key + "="):
            if not done:
                out.append("%s=%s" % (key, value))
                done = True
            continue
        out.append(word)
    if not done:
        out.append("%s=%s" % (key, value))
    return " ".join(w for w in out if w)


def get_param(params, key):
    for word in normalize_params(params).split(" "):
        if word.startswith(key + "="):
            return word[len(key) + 1:]
    return None


def image_of(triple):
    """``{"id": ...}`` or ``{"name", "tag"}`` named by boot parameters (kernel first, then root=), or None."""
    for source in ((triple or {}).get("kernel") or "", get_param((triple or {}).get("params"), "root") or ""):
        match = _SEGMENTS.search(source)
        if not match:
            continue
        parts = [p for p in re.split(r"[/:]", match.group(1)) if p]
        if parts and parts[0] == "efi-images":
            parts = parts[1:]
        if parts and _UUID.match(parts[0]):
            return {"id": parts[0]}
        if len(parts) >= 3 and _NAME.match(parts[0]) and _TAG.match(parts[1]):
            return {"name": parts[0], "tag": parts[1]}
    return None


def _meta(meta, key):
    """An IMS metadata value: the collection's ``vcluster.<key>``, else the lab's ``vclab.<key>``."""
    return meta.get("vcluster." + key) or meta.get("vclab." + key) or ""


def ims_provenance(image):
    """The provenance an IMS image record's metadata holds (hpc.vcluster's, or what the lab's IMS records)."""
    meta = (image or {}).get("metadata") or {}
    return {
        "recipe_sha256": _meta(meta, "recipe_sha256"),
        "recipe": None,
        "parent": _meta(meta, "parent"),
        "parent_digest": _meta(meta, "parent_digest"),
        "builder": _meta(meta, "builder"),
        "build_date": meta.get("vcluster.build_date") or meta.get("vclab.build_time") or "",
        "build_host": "ims",
        "type": "base",
        "package_manager": "",
        "packages": [],
        "package_groups": [],
        "repositories": [],
        "published": [p for p in [((image or {}).get("link") or {}).get("path")] if p],
        "recipe_id": _meta(meta, "recipe_id"),
        "job_id": _meta(meta, "job_id"),
        "metadata": meta,
    }
