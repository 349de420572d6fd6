#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: node_group
short_description: Create, update or delete a label (SMD group) and set its members
version_added: "0.1.0"
description:
  - Manages a label, the SMD (HSM) group that names the nodes of a vCluster, on OpenCHAMI and CSM.
  - Sets the members exactly, or adds or removes some, and shows the members added and removed in the diff.
  - On OpenCHAMI the member list is replaced with one call (C(PUT /groups/{label}/members)). CSM's SMD has no such
    call, so members are added one by one and then removed one by one (adding first, so that a failure half-way
    never leaves the label with fewer nodes than asked).
  - With an exclusive group, a node may be in only one label of that exclusive group. A change that would put a node
    in two labels of the same exclusive group is refused before anything is changed, and the message names the
    nodes and the labels they are in.
  - SMD stores labels in lower case and cannot change the exclusive group of an existing label; the module refuses
    upper-case labels and a different O(exclusive_group) for an existing label rather than silently differ.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
attributes:
  check_mode:
    support: full
    description: Reports what would change (members added and removed, description, tags) without changing it.
  diff_mode:
    support: full
    description: Shows the label before and after, members included.
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller (C(delegate_to=localhost)).
options:
  label:
    description:
      - The label (SMD group name). Lower case; letters, digits and C(-:._). Labels of vClusters should match
        C([a-z][a-z0-9_]*) so that CSM's CFS inventory and Ansible group names keep them (a warning says so).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the label; V(absent) deletes it (its nodes become free).
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the label. Left as it is when not given.
    type: str
  tags:
    description:
      - Tags of the label (SMD lower-cases them). Left as they are when not given.
    type: list
    elements: str
  exclusive_group:
    description:
      - Exclusive group of the label, for example V(vcluster). A node may be in only one label of an exclusive
        group, which is what keeps two vClusters from sharing a node.
      - Only set when the label is created; SMD cannot change it afterwards, so a different value for an existing
        label is an error.
    type: str
  members:
    description:
      - Nodes, as xnames, bracket ranges of xnames (V(x1000c0s[0-3]b0n0)), NIDs or V(nidNNNNNN) host names.
      - What is done with them depends on O(members_mode). When not given, the members are left as they are.
    type: list
    elements: str
  members_mode:
    description:
      - V(exact) makes O(members) the label's only members; V(add) adds them; V(remove) removes them.
    type: str
    choices: [exact, add, remove]
    default: exact
notes:
  - The nodes must exist as components in SMD; unknown xnames are refused before any change.
seealso:
  - module: hpc.vcluster.node_group_info
"""

EXAMPLES = r"""
- name: Carve the vCluster blue out of two free compute nodes
  hpc.vcluster.node_group:
    label: vc_blue
    description: vCluster blue
    exclusive_group: vcluster
    tags: [vcluster]
    members:
      - x1000c0s0b0n0
      - x1000c0s1b0n0
  delegate_to: localhost

- name: Grow it by a range of nodes, whatever it holds already
  hpc.vcluster.node_group:
    label: vc_blue
    members: ["x1000c0s[2-3]b0n0"]
    members_mode: add
  delegate_to: localhost

- name: Give one node back (by NID)
  hpc.vcluster.node_group:
    label: vc_blue
    members: [nid000004]
    members_mode: remove
  delegate_to: localhost

- name: Delete the label (its nodes become free)
  hpc.vcluster.node_group:
    label: vc_blue
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
group:
  description: The label after the task (before it, in check mode, for what did not change). Empty when absent.
  returned: always
  type: dict
  contains:
    label:
      description: The label.
      type: str
      sample: vc_blue
    description:
      description: Its description.
      type: str
      sample: vCluster blue
    tags:
      description: Its tags.
      type: list
      elements: str
      sample: [vcluster]
    exclusive_group:
      description: Its exclusive group, V("") when none.
      type: str
      sample: vcluster
    members:
      description: Its members, sorted.
      type: list
      elements: str
      sample: [x1000c0s0b0n0, x1000c0s1b0n0]
added:
  description: Nodes added to the label (that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [x1000c0s1b0n0]
removed:
  description: Nodes removed from the label (that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: []
created:
  description: Whether the label was created.
  returned: always
  type: bool
  sample: false
deleted:
  description: Whether the label was deleted.
  returned: always
  type: bool
  sample: false
"""

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.hpc.vcluster.plugins.module_utils._access import AccessDenied
from ansible_collections.hpc.vcluster.plugins.module_utils._labels import group_view, labels_of
from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError
from ansible_collections.hpc.vcluster.plugins.module_utils._smd import SMD_LABEL_RE, VCLUSTER_LABEL_RE
from ansible_collections.hpc.vcluster.plugins.module_utils._targets import members_diff, resolve_nodes, unknown_nodes


def check_joining_nodes(module, smd, label, exclusive, joining):
    """Refuse exclusive-group conflicts and (for restricted operators) nodes held by labels they may not manage."""
    if not joining:
        return
    memberships = labels_of(smd, joining)
    other_labels = sorted(set(name for labels in memberships.values() for name in labels) - set([label]))
    if not other_labels:
        return
    exclusive_of = dict((g.get("label"), g.get("exclusiveGroup") or "") for g in smd.groups(labels=other_labels))
    conflicts = {}
    held = {}
    for xname in sorted(joining):
        for other in sorted(memberships.get(xname, set()) - set([label])):
            other_exclusive = exclusive_of.get(other, "")
            if exclusive and other_exclusive == exclusive:
                conflicts.setdefault(other, []).append(xname)
            if other_exclusive and not module.access.allows(other):
                held.setdefault(other, []).append(xname)
    if held:
        raise AccessDenied("access denied: %s; the operator may not take nodes from labels it does not manage "
                           "(allowed: %s). Nothing was changed." % (
                               "; ".join("%s %s in label %s" % (", ".join(nodes), "are" if len(nodes) > 1 else "is", other)
                                         for other, nodes in sorted(held.items())), module.access.describe()))
    if conflicts:
        raise SiteError("conflict: label %s is in exclusive group %r, and %s; a node may be in only one label of an "
                        "exclusive group. Remove the nodes from the other label first (or choose free nodes, see "
                        "hpc.vcluster.node_group_info). Nothing was changed." % (
                            label, exclusive, "; ".join(
                                "%s %s already in label %s" % (", ".join(nodes), "are" if len(nodes) > 1 else "is", other)
                                for other, nodes in sorted(conflicts.items()))))


def run_module(module):
    params = module.params
    label = params["label"]
    if label != label.lower() or not SMD_LABEL_RE.match(label):
        raise SiteError("label %r is not a valid SMD label: use lower case letters, digits and -:._ "
                        "(SMD lower-cases labels, so %r would be stored as %r)" % (label, label, label.lower()))
    if not VCLUSTER_LABEL_RE.match(label):
        module.warn("label %r does not match [a-z][a-z0-9_]*: CSM's CFS inventory drops labels with '-', '.' or ':'"
                    % label)
    module.access.check_labels([label])
    smd = module.clients.smd
    group = smd.group(label)
    before = group_view(group)
    result = {"changed": False, "added": [], "removed": [], "created": False, "deleted": False}

    if params["state"] == "absent":
        if group is None:
            result["group"] = {}
            return result
        if not module.check_mode:
            smd.delete_group(label)
        result.update(changed=True, deleted=True, removed=before["members"], group={})
        result.update(module.diff_result(before, {}))
        return result

    current = before.get("members", [])
    wanted = None
    if params["members"] is not None:
        names = resolve_nodes(smd, params["members"])
        unknown = unknown_nodes(smd, names)
        if unknown:
            raise SiteError("not nodes in SMD (no such Node component): %s. Nothing was changed." % ", ".join(unknown))
        mode = params["members_mode"]
        if mode == "exact":
            wanted = set(names)
        elif mode == "add":
            wanted = set(current) | set(names)
        else:
            wanted = set(current) - set(names)
    target = sorted(wanted) if wanted is not None else list(current)
    added, removed = members_diff(current, target)

    exclusive = params["exclusive_group"]
    if exclusive is not None:
        exclusive = exclusive.lower()
    if group is not None:
        existing = before["exclusive_group"]
        if exclusive is not None and exclusive != existing:
            raise SiteError("label %s exists with exclusive group %r; SMD cannot change a label's exclusive group "
                            "(asked: %r). Delete the label and create it again. Nothing was changed."
                            % (label, existing, exclusive))
        exclusive = existing
    check_joining_nodes(module, smd, label, exclusive or "", added)

    after = dict(before) if group is not None else {
        "label": label, "description": "", "tags": [], "exclusive_group": exclusive or "", "members": []}
    new_description = params["description"]
    new_tags = sorted(t.lower() for t in params["tags"]) if params["tags"] is not None else None
    patch_description = new_description is not None and new_description != after["description"]
    patch_tags = new_tags is not None and new_tags != after["tags"]
    if new_description is not None:
        after["description"] = new_description
    if new_tags is not None:
        after["tags"] = new_tags
    after["members"] = target

    if group is None:
        if not module.check_mode:
            smd.create_group(label, description=after["description"], tags=after["tags"],
                             exclusive_group=exclusive or None, members=target)
        result.update(changed=True, created=True, added=target)
    else:
        if (patch_description or patch_tags) and not module.check_mode:
            smd.update_group(label, description=new_description if patch_description else None,
                             tags=new_tags if patch_tags else None)
        if (added or removed) and not module.check_mode:
            smd.set_members(label, target, current)
        result.update(changed=bool(patch_description or patch_tags or added or removed), added=added, removed=removed)

    result["group"] = after
    if result["changed"]:
        result.update(module.diff_result(before, after))
    return result


def main():
    argument_spec = dict(
        label=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        description=dict(type="str"),
        tags=dict(type="list", elements="str"),
        exclusive_group=dict(type="str"),
        members=dict(type="list", elements="str"),
        members_mode=dict(type="str", choices=["exact", "add", "remove"], default="exact"),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True)
    try:
        module.run(lambda: run_module(module))
    except ValueError as exc:  # bad filter values and the like: a readable message, not a traceback
        module.fail_json(msg=to_native(exc))


if __name__ == "__main__":
    main()
