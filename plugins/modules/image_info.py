#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: image_info
short_description: List boot images with their provenance, and which nodes boot them
version_added: "0.1.0"
description:
  - Answers "what images do I have, how, where, by whom and when were they made, and who boots them".
  - On OpenCHAMI it lists the local podman images that carry image-builder labels (C(org.openchami.image.name)), and
    the images of a registry when O(registry) is set. On CSM it lists IMS images (their C(vcluster.*) metadata holds
    the provenance M(hpc.vcluster.image) records).
  - With O(usage), reads BSS once and adds the nodes whose boot parameters name each image, which is what a rollback
    needs (an older image that nodes no longer use is still listed, with its recipe).
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.info
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
attributes:
  platform:
    support: full
    platforms: controller
    description: Runs on the controller (podman there on OpenCHAMI).
options:
  name:
    description:
      - Only images of this name.
    type: str
  tag:
    description:
      - Only images with this tag.
    type: str
  usage:
    description:
      - Add the nodes that boot each image (one BSS call).
    type: bool
    default: true
  containers_conf:
    description:
      - containers.conf for podman (OpenCHAMI).
      - If not set, E(VCLUSTER_CONTAINERS_CONF) is used, then E(CONTAINERS_CONF).
    type: path
  registry:
    description:
      - A registry (and namespace) to list as well (OpenCHAMI), for example V(demo.openchami.cluster:5000/demo).
    type: str
  registry_username:
    description:
      - User for the registry.
    type: str
  registry_password:
    description:
      - Password for the registry.
    type: str
  registry_validate_certs:
    description:
      - Whether to verify the registry's TLS certificate (O(ca_path) is used as CA bundle).
    type: bool
    default: true
seealso:
  - module: hpc.vcluster.image
"""

EXAMPLES = r"""
- name: What images do I have, and who boots them?
  hpc.vcluster.image_info:
  delegate_to: localhost
  register: catalogue

- name: One line per image
  ansible.builtin.debug:
    msg: "{{ item.name }}:{{ item.tags | join(',') }} built by {{ item.provenance.builder }} on {{ item.provenance.build_date }}
      from recipe {{ item.provenance.recipe_sha256[:12] }}, booted by {{ item.used_by | length }} nodes"
  loop: "{{ catalogue.images }}"

- name: The images of compute-blue, newest first, for a rollback
  hpc.vcluster.image_info:
    name: compute-blue
  delegate_to: localhost
  register: blue
"""

RETURN = r"""
images:
  description: The images, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Image name.
      type: str
      sample: compute-blue
    tags:
      description: Tags of this image.
      type: list
      elements: str
      sample: ["2026.11"]
    refs:
      description: References to it (local C(localhost/name:tag), registry C(host/ns/name:tag)).
      type: list
      elements: str
      sample: [localhost/compute-blue:2026.11]
    digest:
      description: Image id (local), manifest digest (registry) or IMS image id.
      type: str
      sample: sha256:cf13fc7e...
    ims_id:
      description: IMS image id (CSM), V("") elsewhere.
      type: str
      sample: ""
    created:
      description: When the image was created.
      type: str
      sample: "2026-11-22T05:03:19Z"
    size:
      description: Size in bytes (local images), 0 when unknown.
      type: int
      sample: 246000000
    location:
      description: Where it is stored, V(local), V(registry) or V(ims).
      type: str
      sample: local
    storage:
      description: The storage reference (podman storage, registry host, or the IMS image's S3 manifest).
      type: str
      sample: podman
    provenance:
      description: How, from what and by whom it was built.
      type: dict
      contains:
        recipe_sha256:
          description: sha256 of the recipe (and copied files).
          type: str
        recipe:
          description: The recipe itself, when recorded.
          type: dict
        parent:
          description: Parent image.
          type: str
        parent_digest:
          description: Parent's digest at build time.
          type: str
        builder:
          description: Who built it.
          type: str
        build_date:
          description: When.
          type: str
        build_host:
          description: Where (host that ran the build).
          type: str
        type:
          description: Layer type.
          type: str
        package_manager:
          description: Package manager.
          type: str
        packages:
          description: Packages the recipe installed.
          type: list
          elements: str
        package_groups:
          description: Package groups.
          type: list
          elements: str
        repositories:
          description: Repositories added.
          type: list
          elements: str
        published:
          description: Where it was pushed.
          type: list
          elements: str
        recipe_id:
          description: IMS recipe record the image was built from (CSM only).
          type: str
        job_id:
          description: IMS job that built it (CSM only).
          type: str
        metadata:
          description: The IMS image's whole metadata map (CSM only).
          type: dict
    used_by:
      description: Nodes whose BSS boot parameters name this image (with O(usage)).
      type: list
      elements: str
      sample: [x1000c0s0b0n0]
"""

import datetime
import os

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError
from ansible_collections.hpc.vcluster.plugins.module_utils._images import image_of, ims_provenance
from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._podman import OCI, Podman, PodmanError, provenance
from ansible_collections.hpc.vcluster.plugins.module_utils._registry import RegistryClient
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError


def _created(value):
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")


def local_images(module):
    conf = (module.params["containers_conf"] or os.environ.get("VCLUSTER_CONTAINERS_CONF")
            or os.environ.get("CONTAINERS_CONF"))
    podman = Podman(module.run_command, module.get_bin_path("podman", required=True), conf)
    filters = ["label=%sname" % OCI]
    if module.params["name"]:
        filters = ["label=%sname=%s" % (OCI, module.params["name"])]
    out, seen = [], set()
    for row in podman.images(filters):
        if row.get("Id") in seen:
            continue
        seen.add(row.get("Id"))
        labels = row.get("Labels") or {}
        name = labels.get(OCI + "name", "")
        names = sorted(n for n in (row.get("Names") or []) if ":" in n and not n.endswith(":<none>"))
        tags = [n.rsplit(":", 1)[1] for n in names if n.rsplit(":", 1)[0].endswith("/" + name)]
        out.append({
            "name": name, "tags": tags, "refs": names,
            "digest": "sha256:" + str(row.get("Id", "")).replace("sha256:", ""), "ims_id": "",
            "created": _created(row.get("Created")), "size": int(row.get("Size") or 0),
            "location": "local", "storage": "podman", "provenance": provenance(labels),
        })
    return out


def registry_images(module):
    params = module.params
    site = module.clients.site
    client = RegistryClient(params["registry"], params["registry_username"], params["registry_password"],
                            verify=(site.ca_path or True) if params["registry_validate_certs"] else False,
                            timeout=site.timeout)
    out = []
    for repo in client.repositories():
        name = repo.rsplit("/", 1)[-1]
        if params["name"] and name != params["name"]:
            continue
        by_digest = {}
        for tag in client.tags(repo):
            digest, config_digest, config = client.image(repo, tag)
            labels = (config.get("config") or {}).get("Labels") or {}
            entry = by_digest.setdefault(digest or config_digest, {
                "name": labels.get(OCI + "name") or name, "tags": [], "refs": [], "digest": digest or config_digest,
                "ims_id": "", "created": _created(config.get("created")), "size": 0, "location": "registry",
                "storage": client.host, "provenance": provenance(labels)})
            entry["tags"].append(tag)
            entry["refs"].append("%s/%s:%s" % (client.host, repo, tag))
        out.extend(by_digest.values())
    return out


def ims_images(module):
    out = []
    for image in module.clients.ims.images():
        meta = image.get("metadata") or {}
        name = meta.get("vcluster.name") or image.get("name", "")
        if module.params["name"] and name != module.params["name"]:
            continue
        prov = ims_provenance(image)
        tags = [t for t in (meta.get("vcluster.tags") or meta.get("vcluster.tag") or "").split(",") if t]
        out.append({
            "name": name, "tags": tags, "refs": [], "digest": image.get("id", ""), "ims_id": image.get("id", ""),
            "created": str(image.get("created") or ""), "size": 0, "location": "ims",
            "storage": (image.get("link") or {}).get("path", ""), "provenance": prov,
        })
    return out


def usage(module):
    """{("id", x) | ("name", n, t): [xnames]} from every BSS boot parameter entry."""
    used = {}
    for entry in module.clients.bss.bootparameters():
        ref = image_of(entry)
        if not ref:
            continue
        key = ("id", ref["id"]) if "id" in ref else ("name", ref["name"], ref["tag"])
        used.setdefault(key, set()).update(entry.get("hosts") or [])
    return used


def run_module(module):
    params = module.params
    site = module.clients.site
    try:
        if site.kind == "csm":
            images = ims_images(module)
        else:
            images = local_images(module)
            if params["registry"]:
                images.extend(registry_images(module))
    except PodmanError as exc:
        raise SiteError(str(exc))
    if params["tag"]:
        images = [i for i in images if params["tag"] in i["tags"]]
    used = {}
    if params["usage"]:
        try:
            used = usage(module)
        except ApiError as exc:
            module.warn("cannot read BSS for image usage: %s" % exc)
    for image in images:
        nodes = set(used.get(("id", image["ims_id"]), set())) if image["ims_id"] else set()
        for tag in image["tags"]:
            nodes.update(used.get(("name", image["name"], tag), set()))
        image["used_by"] = sorted(nodes)
    images.sort(key=lambda i: (i["provenance"].get("build_date") or i["created"], i["name"]), reverse=True)
    return {"changed": False, "images": images}


def main():
    argument_spec = dict(
        name=dict(type="str"),
        tag=dict(type="str"),
        usage=dict(type="bool", default=True),
        containers_conf=dict(type="path"),
        registry=dict(type="str"),
        registry_username=dict(type="str"),
        registry_password=dict(type="str", no_log=True),
        registry_validate_certs=dict(type="bool", default=True),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True)
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
