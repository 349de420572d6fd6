#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: image
short_description: Build a boot image from an image-builder recipe and register it, with its provenance
version_added: "0.1.0"
description:
  - Builds an image from a recipe in OpenCHAMI image-builder's format (C(options), C(repos), C(packages),
    C(package_groups), C(remove_packages), C(copyfiles), C(cmds)) and records where it came from.
  - On OpenCHAMI the recipe is applied with podman on the host that runs the module (the controller) - the parent
    image is run, each step is executed in it, and the container is committed - then published as
    C(localhost/<name>:<tag>) (image-builder's C(publish_local)) and optionally pushed to O(publish_registry).
    Provenance is written as OCI labels, image-builder's C(org.openchami.image.*) plus C(io.vcluster.image.*)
    (recipe sha256, the recipe, parent digest, builder, build host, build date, where it was pushed).
  - On CSM the build is an IMS job, a recipe record, an IMS C(create) job waited to completion, then the resulting
    image record, whose metadata gets the same provenance (C(vcluster.*) keys). IMS itself builds kiwi-ng recipes
    kept in S3; an image-builder O(recipe) travels in the recipe record's C(template_dictionary) under the key
    C(vclab.recipe), which the project's lab builds and a real IMS ignores. On a real CSM, give O(ims.recipe_id) of
    a recipe uploaded the CSM way instead.
  - The same recipe (by sha256, which covers the content of copied files) on the same parent (by digest) is not
    built again, so a second run reports no change; O(force) rebuilds.
  - M(hpc.vcluster.image_info) lists the images and their provenance.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
attributes:
  check_mode:
    support: full
    description: Reports whether the image would be built, tagged or removed, without doing it.
  diff_mode:
    support: full
    description: Shows the image's tags, digest and recipe sha256 before and after.
  platform:
    support: full
    platforms: controller
    description: >-
      Runs on the controller. On OpenCHAMI it needs podman there (C(CONTAINERS_CONF) is honoured, see
      O(containers_conf)); on CSM only the site's API.
options:
  name:
    description:
      - Image name. Defaults to the recipe's C(options.name).
    type: str
  tags:
    description:
      - Tags to publish. Defaults to the recipe's C(options.publish_tags), then V(latest).
      - On CSM the IMS image is named C(<name>-<first tag>).
    type: list
    elements: str
  recipe:
    description:
      - The recipe, as image-builder reads it. C(options.parent) names the parent image (a local podman image, or
        one that can be pulled); C(options.pkg_manager) is V(apt), V(dnf) or V(zypper).
      - Mutually exclusive with O(recipe_file); one of the two is required with O(state=present).
    type: dict
  recipe_file:
    description:
      - A YAML file holding the recipe. C(copyfiles) sources are relative to its directory.
    type: path
  state:
    description:
      - V(present) builds the image unless it is up to date; V(absent) removes the tags (OpenCHAMI) or soft-deletes
        the IMS images of that name (CSM, which keeps them restorable under C(/deleted/images)).
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Build even if an image of this recipe on this parent exists.
    type: bool
    default: false
  builder:
    description:
      - Who builds the image, recorded in the provenance.
      - If not set, E(VCLUSTER_IMAGE_BUILDER) is used, then C(<user>@<host>) of the process running the module.
    type: str
  containers_conf:
    description:
      - containers.conf for podman (OpenCHAMI). Some hosts need one (for example runc instead of crun, no default
        ulimits).
      - If not set, E(VCLUSTER_CONTAINERS_CONF) is used, then E(CONTAINERS_CONF) as podman itself reads it.
    type: path
  build_network:
    description:
      - Network of the build container (OpenCHAMI); package mirrors must be reachable from it.
    type: str
    default: host
  publish_registry:
    description:
      - Registry (and namespace) to push to as well, C(<publish_registry>/<name>:<tag>), as image-builder's option
        of the same name. Overrides the recipe's C(options.publish_registry).
    type: str
  registry_opts_push:
    description:
      - Extra C(podman push) options, for example V(--tls-verify=false).
    type: list
    elements: str
  registry_opts_pull:
    description:
      - Extra C(podman pull) options for a parent that is not local.
    type: list
    elements: str
  ims:
    description:
      - IMS settings (CSM).
    type: dict
    suboptions:
      recipe_id:
        description:
          - An IMS recipe record to build instead of O(recipe), for example a kiwi-ng recipe uploaded the CSM way.
            The module runs the job and records the provenance; the recipe's content is IMS's.
        type: str
      public_key:
        description:
          - SSH public key for the IMS job (IMS requires one). Registered as the IMS public key C(hpc.vcluster) unless
            a record holds it already. When not given, an existing IMS public key record is used.
        type: str
      linux_distribution:
        description:
          - C(linux_distribution) of the recipe record.
        type: str
        default: sles15
      recipe_type:
        description:
          - C(recipe_type) of the recipe record.
        type: str
        default: kiwi-ng
      arch:
        description:
          - Architecture of the image.
        type: str
        choices: [x86_64, aarch64]
        default: x86_64
  wait_timeout:
    description:
      - Seconds to wait for the IMS job (CSM).
    type: int
    default: 3600
notes:
  - No container registry is needed on OpenCHAMI unless O(publish_registry) is set; image-builder's C(publish_s3)
    (SquashFS, kernel and initrd in S3) is not done by this module.
  - C(podman build) is not used, on purpose, it cannot set its rlimits on some hosts (sandboxes, hybrid cgroups).
seealso:
  - module: hpc.vcluster.image_info
  - module: hpc.vcluster.boot_params
"""

EXAMPLES = r"""
- name: Build the compute image of vc_blue on the site's base image
  hpc.vcluster.image:
    recipe:
      options:
        name: compute-blue
        publish_tags: ["2026.11"]
        parent: localhost/vclab-base:bookworm
        pkg_manager: apt
        labels:
          org.example.owner: team-blue
      packages: [chrony, nfs-common]
      cmds:
        - cmd: systemctl enable chrony
  delegate_to: localhost
  register: built

- name: Build from a recipe file and push it to the site registry
  hpc.vcluster.image:
    recipe_file: recipes/compute.yaml
    publish_registry: demo.openchami.cluster:5000/demo
    registry_opts_push: [--tls-verify=false]
  delegate_to: localhost

- name: Boot it
  hpc.vcluster.boot_params:
    label: vc_blue
    image: "{{ {'id': built.image.ims_id} if built.image.ims_id else {'name': built.image.name, 'tag': built.image.tags[0]} }}"
  delegate_to: localhost
"""

RETURN = r"""
image:
  description: The image after the task (what it would be, in check mode). Empty when absent.
  returned: always
  type: dict
  contains:
    name:
      description: Image name.
      type: str
      sample: compute-blue
    tags:
      description: Its tags.
      type: list
      elements: str
      sample: ["2026.11"]
    refs:
      description: Local references (OpenCHAMI), C(localhost/<name>:<tag>).
      type: list
      elements: str
      sample: [localhost/compute-blue:2026.11]
    digest:
      description: Image id (OpenCHAMI; V("") in check mode before a build) or IMS image id (CSM).
      type: str
      sample: sha256:2e0002bd95675d4c2a0f...
    ims_id:
      description: IMS image id (CSM), V("") elsewhere.
      type: str
      sample: 4bf91021-8d99-4adf-945f-46de2ff50a3d
    recipe_sha256:
      description: sha256 of the recipe and of the files it copies.
      type: str
      sample: 9f2c...
    parent:
      description: The parent image as the recipe names it.
      type: str
      sample: localhost/vclab-base:bookworm
    parent_digest:
      description: The parent's image id at build time.
      type: str
      sample: sha256:51471bbe...
    builder:
      description: Who built it.
      type: str
      sample: alice@controller
    build_date:
      description: When it was built (UTC).
      type: str
      sample: "2026-11-22T05:00:00Z"
    published:
      description: Registry references it was pushed to.
      type: list
      elements: str
      sample: []
outcome:
  description: What was done, V(none), V(built), V(tagged) (an existing build of the recipe got the tags) or V(removed).
  returned: always
  type: str
  sample: built
"""

import getpass
import json
import os
import socket

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.hpc.vcluster.plugins.module_utils._images import ims_provenance
from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._podman import (
    OCI, VC, Podman, PodmanError, as_list, build, check_recipe, find_built, image_id, image_labels, now, provenance,
    recipe_sha256, valid_name, valid_tag)
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    HAS_YAML = False

IMS_KEY_NAME = "hpc.vcluster"


def load_recipe(module):
    params = module.params
    if params["recipe"] is not None:
        return dict(params["recipe"]), None
    path = params["recipe_file"]
    if not HAS_YAML:
        raise SiteError("recipe_file needs PyYAML on the controller; pass the recipe as a mapping instead")
    try:
        with open(path) as handle:
            recipe = yaml.safe_load(handle)
    except (IOError, OSError, yaml.YAMLError) as exc:
        raise SiteError("cannot read recipe_file %s: %s" % (path, to_native(exc)))
    return recipe, os.path.dirname(os.path.abspath(path))


def default_builder():
    env = os.environ.get("VCLUSTER_IMAGE_BUILDER")
    if env:
        return env
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return "%s@%s" % (user, socket.gethostname())


def name_and_tags(params, options):
    name = params["name"] or options.get("name")
    tags = [str(t) for t in (params["tags"] if params["tags"] is not None else as_list(options.get("publish_tags")))]
    tags = tags or ["latest"]
    if not valid_name(name):
        raise SiteError("image name %r is missing or invalid (lower case letters, digits, '.', '_', '-')" % (name,))
    bad = [t for t in tags if not valid_tag(t)]
    if bad:
        raise SiteError("invalid image tags: %s" % ", ".join(bad))
    return name, tags


# ------------------------------------------------------------------------------ OpenCHAMI: podman
def podman_for(module):
    conf = (module.params["containers_conf"] or os.environ.get("VCLUSTER_CONTAINERS_CONF")
            or os.environ.get("CONTAINERS_CONF"))
    binary = module.get_bin_path("podman", required=True)
    return Podman(module.run_command, binary, conf)


def local_view(name, tags, info, sha=None):
    labels = image_labels(info) if info else {}
    prov = provenance(labels)
    return {
        "name": name, "tags": tags, "refs": ["localhost/%s:%s" % (name, t) for t in tags],
        "digest": image_id(info) if info else "", "ims_id": "",
        "recipe_sha256": prov["recipe_sha256"] or sha or "", "parent": prov["parent"],
        "parent_digest": prov["parent_digest"], "builder": prov["builder"], "build_date": prov["build_date"],
        "published": prov["published"],
    }


def present_podman(module, recipe, base_dir):
    params = module.params
    options = check_recipe(recipe)
    name, tags = name_and_tags(params, options)
    podman = podman_for(module)
    parent = options.get("parent")
    if not parent or parent == "scratch":
        raise SiteError("recipe options.parent is needed: this builder applies the recipe to a parent image "
                        "(image-builder's 'scratch' bootstrap with dnf --installroot is not supported)")
    parent_info = podman.inspect(parent)
    if parent_info is None and "/" in parent.split(":")[0] and not parent.startswith("localhost/"):
        if module.check_mode:
            raise SiteError("parent image %s is not local; check mode does not pull it" % parent)
        podman.pull(parent, params["registry_opts_pull"] or options.get("registry_opts_pull") or [])
        parent_info = podman.inspect(parent)
    if parent_info is None:
        raise SiteError("parent image %s does not exist locally and cannot be pulled" % parent)
    parent_digest = image_id(parent_info)
    sha = recipe_sha256(recipe, base_dir)

    registry = params["publish_registry"] or options.get("publish_registry")
    published = ["%s/%s:%s" % (registry.rstrip("/"), name, t) for t in tags] if registry else []
    current = dict((t, podman.inspect("localhost/%s:%s" % (name, t))) for t in tags)
    first = next((info for info in current.values() if info), None)
    before = local_view(name, [t for t in tags if current[t]], first) if first else {}

    def up_to_date(info):
        labels = image_labels(info) if info else {}
        return bool(info) and labels.get(VC + "recipe-sha256") == sha and labels.get(VC + "parent-digest") == parent_digest

    if not params["force"] and all(up_to_date(info) for info in current.values()):
        ids = set(image_id(info) for info in current.values())
        if len(ids) == 1:
            return {"changed": False, "outcome": "none", "image": local_view(name, tags, first)}

    built = None if params["force"] else find_built(podman, name, sha, parent_digest)
    action = "tagged" if built else "built"
    if module.check_mode:
        after = local_view(name, tags, podman.inspect(built) if built else None, sha)
        after.update(parent=parent, parent_digest=parent_digest, published=published)
        result = {"changed": True, "outcome": action, "image": after}
        result.update(module.diff_result(before, after))
        return result
    if built:
        for t in tags:
            podman.tag(built, "localhost/%s:%s" % (name, t))
    else:
        build_host = socket.gethostname()
        built = build(podman, recipe, name, tags, parent, parent_digest, sha, params["builder"] or default_builder(),
                      build_host, base_dir=base_dir, network=params["build_network"], published=published)
        push_opts = params["registry_opts_push"] or options.get("registry_opts_push") or []
        for t, dest in zip(tags, published):
            podman.push("localhost/%s:%s" % (name, t), dest, push_opts)
    after = local_view(name, tags, podman.inspect("localhost/%s:%s" % (name, tags[0])))
    result = {"changed": True, "outcome": action, "image": after}
    result.update(module.diff_result(before, after))
    return result


def absent_podman(module):
    params = module.params
    name = params["name"] or ((params["recipe"] or {}).get("options") or {}).get("name")
    if not valid_name(name):
        raise SiteError("state=absent needs the image name")
    podman = podman_for(module)
    if params["tags"]:
        refs = ["localhost/%s:%s" % (name, t) for t in params["tags"]]
    else:
        refs = sorted(set(n for row in podman.images(["reference=localhost/%s" % name])
                          for n in (row.get("Names") or []) if n.startswith("localhost/%s:" % name)))
    present = [r for r in refs if podman.inspect(r)]
    if not present:
        return {"changed": False, "outcome": "none", "image": {}}
    if not module.check_mode:
        for ref in present:
            podman.untag(ref)
        for row in podman.images(["dangling=true", "label=%sname=%s" % (OCI, name)]):
            podman.remove(row.get("Id"))
    result = {"changed": True, "outcome": "removed", "image": {}}
    result.update(module.diff_result({"name": name, "refs": present}, {}))
    return result


# ------------------------------------------------------------------------------ CSM: IMS
def ims_view(image, name, tags):
    prov = ims_provenance(image)
    return {
        "name": name, "tags": tags, "refs": [], "digest": (image or {}).get("id", ""),
        "ims_id": (image or {}).get("id", ""), "recipe_sha256": prov["recipe_sha256"], "parent": prov["parent"],
        "parent_digest": prov["parent_digest"], "builder": prov["builder"], "build_date": prov["build_date"],
        "published": prov["published"],
    }


def ims_public_key(module, ims):
    wanted = ((module.params.get("ims") or {}).get("public_key") or os.environ.get("VCLUSTER_IMS_PUBLIC_KEY") or "").strip()
    keys = ims.public_keys()
    if wanted:
        for key in keys:
            if (key.get("public_key") or "").strip() == wanted:
                return key["id"]
        if module.check_mode:
            return "(new)"
        return ims.create_public_key(IMS_KEY_NAME, wanted)["id"]
    for key in keys:
        if key.get("name") == IMS_KEY_NAME:
            return key["id"]
    if keys:
        return keys[0]["id"]
    raise SiteError("IMS has no public key record and ims.public_key is not set: IMS jobs need one")


def present_ims(module, recipe, base_dir):
    params = module.params
    ims_opts = params.get("ims") or {}
    ims = module.clients.ims
    if recipe is None:
        existing_recipe = ims.recipe(ims_opts["recipe_id"])
        if existing_recipe is None:
            raise SiteError("IMS recipe %s does not exist" % ims_opts["recipe_id"])
        options = {"name": params["name"] or existing_recipe.get("name")}
        name, tags = name_and_tags(params, options)
        sha = "ims-recipe:%s" % ims_opts["recipe_id"]
    else:
        options = check_recipe(recipe)
        name, tags = name_and_tags(params, options)
        sha = recipe_sha256(recipe, base_dir)
    image_name = "%s-%s" % (name, tags[0])
    matching = [i for i in ims.images() if (i.get("metadata") or {}).get("vcluster.name") == name
                and (i.get("metadata") or {}).get("vcluster.tag") == tags[0]]
    matching.sort(key=lambda i: i.get("created") or "")
    current = matching[-1] if matching else None
    before = ims_view(current, name, tags) if current else {}
    if current and not params["force"] and (current.get("metadata") or {}).get("vcluster.recipe_sha256") == sha:
        return {"changed": False, "outcome": "none", "image": before}
    if module.check_mode:
        after = {"name": name, "tags": tags, "refs": [], "digest": "", "ims_id": "", "recipe_sha256": sha,
                 "parent": options.get("parent") or "", "parent_digest": "", "builder": params["builder"] or default_builder(),
                 "build_date": "", "published": []}
        result = {"changed": True, "outcome": "built", "image": after}
        result.update(module.diff_result(before, after))
        return result
    key_id = ims_public_key(module, ims)
    if recipe is None:
        recipe_record = existing_recipe
    else:
        recipe_record = ims.create_recipe({
            "name": image_name, "recipe_type": ims_opts.get("recipe_type") or "kiwi-ng",
            "linux_distribution": ims_opts.get("linux_distribution") or "sles15",
            "arch": ims_opts.get("arch") or "x86_64",
            "template_dictionary": [{"key": "vclab.recipe", "value": _recipe_json(recipe, base_dir)},
                                    {"key": "vcluster.recipe_sha256", "value": sha}],
        })
    job = ims.create_job({"job_type": "create", "artifact_id": recipe_record["id"], "public_key_id": key_id,
                          "image_root_archive_name": image_name, "arch": ims_opts.get("arch") or "x86_64",
                          "enable_debug": False})
    final = ims.wait_job(job["id"], params["wait_timeout"])
    if final.get("status") != "success" or not final.get("resultant_image_id"):
        reason = (": %s" % final.get("error")) if final.get("error") else ""
        raise SiteError("IMS job %s ended with status %s%s" % (job["id"], final.get("status"), reason))
    image_id_ = final["resultant_image_id"]
    builder = params["builder"] or default_builder()
    ims.set_metadata(image_id_, {
        "vcluster.name": name, "vcluster.tag": tags[0], "vcluster.tags": ",".join(tags), "vcluster.recipe_sha256": sha,
        "vcluster.recipe_id": recipe_record["id"], "vcluster.job_id": job["id"], "vcluster.builder": builder,
        "vcluster.build_date": now(), "vcluster.parent": options.get("parent") or "",
    })
    after = ims_view(ims.image(image_id_), name, tags)
    result = {"changed": True, "outcome": "built", "image": after}
    result.update(module.diff_result(before, after))
    return result


def _recipe_json(recipe, base_dir):
    """The recipe with copied files inlined (IMS has no access to the controller's files)."""
    inlined = dict(recipe)
    files = []
    for item in as_list(recipe.get("copyfiles")):
        src = os.path.join(base_dir or ".", item["src"])
        try:
            with open(src, "rb") as handle:
                content = handle.read().decode("utf-8")
        except (IOError, OSError, UnicodeDecodeError) as exc:
            raise SiteError("copyfiles src %s cannot be sent to IMS: %s" % (src, to_native(exc)))
        files.append({"dest": item.get("dest") or item.get("dst"), "content": content})
    if files:
        inlined.pop("copyfiles", None)
        inlined["files"] = files
    return json.dumps(inlined, sort_keys=True)


def absent_ims(module):
    params = module.params
    name = params["name"] or ((params["recipe"] or {}).get("options") or {}).get("name")
    if not valid_name(name):
        raise SiteError("state=absent needs the image name")
    ims = module.clients.ims
    tags = params["tags"]
    gone = [i for i in ims.images() if (i.get("metadata") or {}).get("vcluster.name") == name
            and (not tags or (i.get("metadata") or {}).get("vcluster.tag") in tags)]
    if not gone:
        return {"changed": False, "outcome": "none", "image": {}}
    if not module.check_mode:
        for image in gone:
            ims.delete_image(image["id"])
    result = {"changed": True, "outcome": "removed", "image": {}}
    result.update(module.diff_result({"name": name, "ims_ids": sorted(i["id"] for i in gone)}, {}))
    return result


def run_module(module):
    params = module.params
    kind = module.clients.site.kind
    try:
        if params["state"] == "absent":
            return absent_ims(module) if kind == "csm" else absent_podman(module)
        if kind == "csm" and (params.get("ims") or {}).get("recipe_id") and params["recipe"] is None \
                and params["recipe_file"] is None:
            return present_ims(module, None, None)
        if params["recipe"] is None and params["recipe_file"] is None:
            raise SiteError("state=present needs recipe or recipe_file")
        recipe, base_dir = load_recipe(module)
        if kind == "csm":
            return present_ims(module, recipe, base_dir)
        return present_podman(module, recipe, base_dir)
    except PodmanError as exc:
        raise SiteError(str(exc))


def main():
    argument_spec = dict(
        name=dict(type="str"),
        tags=dict(type="list", elements="str"),
        recipe=dict(type="dict"),
        recipe_file=dict(type="path"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        force=dict(type="bool", default=False),
        builder=dict(type="str"),
        containers_conf=dict(type="path"),
        build_network=dict(type="str", default="host"),
        publish_registry=dict(type="str"),
        registry_opts_push=dict(type="list", elements="str"),
        registry_opts_pull=dict(type="list", elements="str"),
        ims=dict(type="dict", options=dict(
            recipe_id=dict(type="str"),
            public_key=dict(type="str", no_log=False),
            linux_distribution=dict(type="str", default="sles15"),
            recipe_type=dict(type="str", default="kiwi-ng"),
            arch=dict(type="str", choices=["x86_64", "aarch64"], default="x86_64"),
        )),
        wait_timeout=dict(type="int", default=3600),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True,
                        mutually_exclusive=[("recipe", "recipe_file")])
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
