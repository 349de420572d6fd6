#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: bos_session
short_description: Manage a BOS session template and run a boot, reboot or shutdown session (CSM)
version_added: "0.1.0"
description:
  - On CSM, BOS (the Boot Orchestration Service) boots nodes from a session template, an image manifest, kernel
    parameters and the node groups (labels) to boot. This module writes the template (from an IMS image, kernel
    parameters and labels) when its content differs, and runs a session with it, waiting until the session completes.
  - The template is compared without the fields BOS owns (C(name), C(tenant), C(links), boot-set C(name)s), so a
    second run with the same options reports no change.
  - A session is an action. With O(session_name), a session of that name that exists already is not started again
    (it is waited for if it still runs), which makes the task idempotent; without it every run starts a new session.
  - A session whose nodes failed makes the task fail, naming the errors BOS reports.
  - CSM only; on OpenCHAMI use M(hpc.vcluster.boot_params) and M(hpc.vcluster.power).
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
attributes:
  check_mode:
    support: full
    description: Reports whether the template would be written and a session started.
  diff_mode:
    support: full
    description: Shows the session template before and after.
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller.
options:
  template_name:
    description:
      - Name of the session template.
    type: str
    required: true
  state:
    description:
      - V(present) writes the template (when boot-set options are given) and runs O(operation); V(absent) deletes the
        template.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the template.
    type: str
    default: ""
  image:
    description:
      - The IMS image the boot set boots, by O(image.id), or by O(image.name) (the newest IMS image of that name, or
        whose C(vcluster.name) metadata is that name).
      - Gives the boot set's C(path) (C(s3://boot-images/<id>/manifest.json)) and C(etag). Mutually exclusive with O(path).
    type: dict
    suboptions:
      id:
        description:
          - IMS image id.
        type: str
      name:
        description:
          - IMS image name.
        type: str
  path:
    description:
      - The boot set's manifest path, when not given by O(image).
    type: str
  etag:
    description:
      - The manifest's etag (defaults to the IMS image's).
    type: str
  boot_set:
    description:
      - Name of the boot set.
    type: str
    default: compute
  kernel_parameters:
    description:
      - Kernel parameters of the boot set.
    type: str
    default: ""
  node_groups:
    description:
      - Labels (HSM groups) whose members the boot set boots.
    type: list
    elements: str
  node_list:
    description:
      - Nodes (xnames) the boot set boots.
    type: list
    elements: str
  node_roles_groups:
    description:
      - HSM roles whose nodes the boot set boots. Refused with access control, which limits an operator to labels.
    type: list
    elements: str
  arch:
    description:
      - Architecture of the boot set's nodes.
    type: str
    choices: [X86, ARM, Other, Unknown]
    default: X86
  rootfs_provider:
    description:
      - Root file system provider (for example V(sbps) or V(cpss3)).
    type: str
  rootfs_provider_passthrough:
    description:
      - Root file system provider parameters.
    type: str
  enable_cfs:
    description:
      - Whether BOS asks CFS to configure the nodes after boot.
    type: bool
    default: false
  cfs_configuration:
    description:
      - CFS configuration, with O(enable_cfs).
    type: str
  tenant:
    description:
      - Tenant (C(Cray-Tenant-Name) header) that owns the template and session.
    type: str
  operation:
    description:
      - Session to run with the template. None when not given (only the template is managed).
    type: str
    choices: [boot, reboot, shutdown]
  session_name:
    description:
      - Name of the session. An existing session of that name is not started again.
    type: str
  limit:
    description:
      - BOS session limit (comma list of xnames, labels or roles; C(&) prefix = AND, C(!) = NOT).
    type: str
  include_disabled:
    description:
      - Include nodes that are disabled in HSM.
    type: bool
    default: false
  wait:
    description:
      - Wait for the session to complete.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the session.
    type: int
    default: 1800
  poll_interval:
    description:
      - Seconds between two polls at first (the interval grows up to 15 s).
    type: float
    default: 5
seealso:
  - module: hpc.vcluster.image
  - module: hpc.vcluster.boot_params
"""

EXAMPLES = r"""
- name: Boot vc_blue from its IMS image through BOS
  hpc.vcluster.bos_session:
    template_name: vc-blue
    image:
      name: compute-blue-2026.11
    kernel_parameters: console=ttyS0,115200 ip=dhcp
    node_groups: [vc_blue]
    operation: boot
    session_name: vc-blue-boot-2026-11
  delegate_to: localhost

- name: Reboot two of its nodes with the same template
  hpc.vcluster.bos_session:
    template_name: vc-blue
    operation: reboot
    limit: x1000c0s0b0n0,x1000c0s1b0n0
  delegate_to: localhost

- name: Delete the template
  hpc.vcluster.bos_session:
    template_name: vc-blue
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
template:
  description: The session template after the task (as BOS stores it; as it would be written, in check mode).
  returned: always
  type: dict
  sample:
    description: vCluster blue
    enable_cfs: false
    boot_sets:
      compute:
        path: s3://boot-images/4bf91021-8d99-4adf-945f-46de2ff50a3d/manifest.json
        type: s3
        node_groups: [vc_blue]
        kernel_parameters: console=ttyS0,115200
        arch: X86
template_changed:
  description: Whether the template was (would be) written or deleted.
  returned: always
  type: bool
  sample: true
session:
  description: The session started or found (empty when none).
  returned: always
  type: dict
  sample:
    name: vc-blue-boot-2026-11
    operation: boot
    template_name: vc-blue
    components: x1000c0s0b0n0,x1000c0s1b0n0
    status: {status: complete, start_time: "2026-11-22T05:00:00", end_time: "2026-11-22T05:01:10", error: null}
session_status:
  description: BOS's extended status of the session (phases, percentages, error summary), when waited for.
  returned: always
  type: dict
  sample: {status: complete, percent_successful: 100, percent_failed: 0, error_summary: {}}
"""

from ansible_collections.hpc.vcluster.plugins.module_utils._access import AccessDenied
from ansible_collections.hpc.vcluster.plugins.module_utils._bos import comparable_template
from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError
from ansible_collections.hpc.vcluster.plugins.module_utils._targets import resolve_nodes
from ansible_collections.hpc.vcluster.plugins.module_utils._wait import WaitTimeout

BOOT_SET_OPTIONS = ("image", "path", "node_groups", "node_list", "node_roles_groups")


def resolve_image(ims, image):
    if image.get("id"):
        record = ims.image(image["id"])
        if record is None:
            raise SiteError("IMS image %s does not exist" % image["id"])
        return record
    name = image.get("name")
    found = [i for i in ims.images() if i.get("name") == name or (i.get("metadata") or {}).get("vcluster.name") == name]
    if not found:
        raise SiteError("IMS has no image named %r" % name)
    return sorted(found, key=lambda i: i.get("created") or "")[-1]


def wanted_template(module):
    params = module.params
    boot_set = {"type": "s3", "arch": params["arch"], "kernel_parameters": params["kernel_parameters"] or ""}
    if params["image"]:
        record = resolve_image(module.clients.ims, params["image"])
        link = record.get("link") or {}
        boot_set["path"] = link.get("path") or "s3://boot-images/%s/manifest.json" % record["id"]
        if link.get("etag") or params["etag"]:
            boot_set["etag"] = params["etag"] or link["etag"]
    elif params["path"]:
        boot_set["path"] = params["path"]
        if params["etag"]:
            boot_set["etag"] = params["etag"]
    else:
        raise SiteError("the template needs image or path")
    for key in ("node_groups", "node_list", "node_roles_groups"):
        if params[key]:
            boot_set[key] = list(params[key])
    if params["node_list"]:
        boot_set["node_list"] = resolve_nodes(module.clients.smd, params["node_list"])
    if not any(boot_set.get(k) for k in ("node_groups", "node_list", "node_roles_groups")):
        raise SiteError("the boot set needs node_groups, node_list or node_roles_groups")
    for key in ("rootfs_provider", "rootfs_provider_passthrough"):
        if params[key] is not None:
            boot_set[key] = params[key]
    template = {"description": params["description"], "enable_cfs": params["enable_cfs"],
                "boot_sets": {params["boot_set"]: boot_set}}
    if params["cfs_configuration"]:
        template["cfs"] = {"configuration": params["cfs_configuration"]}
    return template


def check_template_access(module, template):
    access = module.access
    if not access.restricted:
        return
    for name, boot_set in ((template or {}).get("boot_sets") or {}).items():
        if boot_set.get("node_roles_groups"):
            raise AccessDenied("access denied: boot set %s boots HSM roles %s; an operator limited to labels may "
                               "only use node_groups and node_list. Nothing was changed."
                               % (name, ", ".join(boot_set["node_roles_groups"])))
        access.check_labels(boot_set.get("node_groups") or [])
        access.check_nodes(module.clients.smd, boot_set.get("node_list") or [])


def run_session(module, bos, result):
    params = module.params
    name = params["session_name"]
    session = bos.session(name) if name else None
    if session is None:
        result["changed"] = True
        if module.check_mode:
            result["session"] = {"name": name or "", "operation": params["operation"],
                                 "template_name": params["template_name"], "status": {"status": "pending"}}
            return
        session = bos.create_session(params["template_name"], params["operation"], limit=params["limit"], name=name,
                                     include_disabled=params["include_disabled"])
    elif session.get("operation") != params["operation"] or session.get("template_name") != params["template_name"]:
        raise SiteError("session %s exists with operation %s of template %s; choose another session_name"
                        % (name, session.get("operation"), session.get("template_name")))
    result["session"] = session
    if not params["wait"] or module.check_mode:
        return
    try:
        session = bos.wait_session(session["name"], params["wait_timeout"], params["poll_interval"])
    except WaitTimeout as exc:
        result["session"] = exc.last or session
        module.fail_json(msg="BOS session %s did not complete within %ss; it goes on in BOS"
                             % (session["name"], params["wait_timeout"]), **result)
    status = bos.session_status(session["name"])
    result["session"], result["session_status"] = session, status
    error = (session.get("status") or {}).get("error")
    failed = float(status.get("percent_failed") or 0)
    if error or failed > 0:
        summary = "; ".join("%s: %s" % (msg, info.get("list") or ",".join(info.get("ids") or []))
                            for msg, info in sorted((status.get("error_summary") or {}).items()))
        module.fail_json(msg="BOS session %s completed with failures (%s%% failed)%s%s" % (
            session["name"], failed, (": " + error) if error else "", (": " + summary) if summary else ""), **result)


def run_module(module):
    params = module.params
    if module.clients.site.kind != "csm" and not module.clients.site.has_service("bos"):
        raise SiteError("BOS is a CSM service: on OpenCHAMI boot nodes with hpc.vcluster.boot_params and "
                        "hpc.vcluster.power")
    bos = module.clients.bos
    bos.tenant = params["tenant"]
    name = params["template_name"]
    current = bos.template(name)
    result = {"changed": False, "template_changed": False, "template": current or {}, "session": {},
              "session_status": {}}

    if params["state"] == "absent":
        if current is not None:
            check_template_access(module, current)
            result.update(changed=True, template_changed=True, template={})
            result.update(module.diff_result(comparable_template(current), {}))
            if not module.check_mode:
                bos.delete_template(name)
        return result

    if any(params[k] for k in BOOT_SET_OPTIONS):
        wanted = wanted_template(module)
        check_template_access(module, wanted)
        if current is not None:
            check_template_access(module, current)
        if comparable_template(current) != comparable_template(wanted):
            result.update(changed=True, template_changed=True, template=wanted)
            result.update(module.diff_result(comparable_template(current) if current else {}, wanted))
            if not module.check_mode:
                result["template"] = bos.put_template(name, wanted) or wanted
    elif current is None:
        raise SiteError("session template %s does not exist; give image (or path) and node_groups to create it" % name)
    else:
        check_template_access(module, current)

    if params["operation"]:
        run_session(module, bos, result)
    return result


def main():
    argument_spec = dict(
        template_name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        description=dict(type="str", default=""),
        image=dict(type="dict", options=dict(id=dict(type="str"), name=dict(type="str")),
                   mutually_exclusive=[("id", "name")], required_one_of=[("id", "name")]),
        path=dict(type="str"),
        etag=dict(type="str"),
        boot_set=dict(type="str", default="compute"),
        kernel_parameters=dict(type="str", default=""),
        node_groups=dict(type="list", elements="str"),
        node_list=dict(type="list", elements="str"),
        node_roles_groups=dict(type="list", elements="str"),
        arch=dict(type="str", choices=["X86", "ARM", "Other", "Unknown"], default="X86"),
        rootfs_provider=dict(type="str"),
        rootfs_provider_passthrough=dict(type="str", no_log=False),
        enable_cfs=dict(type="bool", default=False),
        cfs_configuration=dict(type="str"),
        tenant=dict(type="str"),
        operation=dict(type="str", choices=["boot", "reboot", "shutdown"]),
        session_name=dict(type="str"),
        limit=dict(type="str"),
        include_disabled=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1800),
        poll_interval=dict(type="float", default=5.0),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True,
                        mutually_exclusive=[("image", "path")])
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
