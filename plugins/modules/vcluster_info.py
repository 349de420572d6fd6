#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: vcluster_info
short_description: Read a vCluster's current release and its history from the site
version_added: "0.2.0"
description:
  - Reads the release records M(hpc.vcluster.vcluster_release) keeps in the site's S3 store, and returns the release
    the vCluster runs (the last that succeeded), the latest record, where a rollback goes by default, and the history.
  - With O(release), also returns the record it names (what M(hpc.vcluster.vcluster_release) and the rollback
    playbook replay).
  - Never changes anything. A vCluster without records has an empty history.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.info
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
  - hpc.vcluster.release_store
attributes:
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API and S3 store are reachable, usually the controller.
options:
  name:
    description:
      - The vCluster (its label).
    type: str
    required: true
  release:
    description:
      - A release to return in full as RV(selected) - V(previous), V(current), V(latest), a number, or C(<name>-<number>).
      - Fails, listing the history, when there is no such release.
    type: str
  full:
    description:
      - Include each record's manifest and fingerprints in RV(history) (the summaries leave them out).
    type: bool
    default: false
seealso:
  - module: hpc.vcluster.vcluster_release
"""

EXAMPLES = r"""
- name: What does eiger run, and what ran before?
  hpc.vcluster.vcluster_info:
    name: eiger
  delegate_to: localhost
  register: eiger

- name: One line per release
  ansible.builtin.debug:
    msg: "{{ item.id }} {{ item.operation }} {{ item.result }} {{ item.created }} by {{ item.who.user }}"
  loop: "{{ eiger.history }}"

- name: The release a rollback would go to
  hpc.vcluster.vcluster_info:
    name: eiger
    release: previous
  delegate_to: localhost
  register: target
"""

RETURN = r"""
current:
  description: The release the vCluster runs (the last record that succeeded), in full; null when none did.
  returned: always
  type: dict
  sample: {id: eiger-000002, seq: 2, operation: update, result: success, images: {compute: {name: compute-base, tag: "2026.12"}}}
latest:
  description: The latest record, in full (a failed update, for example); null when there is none.
  returned: always
  type: dict
previous:
  description: Where a rollback goes by default (the last success before the latest record, with another manifest), summary.
  returned: always
  type: dict
selected:
  description: The record O(release) names, in full.
  returned: when O(release) is given
  type: dict
history:
  description: Every record, oldest first (summaries unless O(full)).
  returned: always
  type: list
  elements: dict
  sample: [{id: eiger-000001, operation: deploy, result: success}, {id: eiger-000002, operation: update, result: failed}]
"""

from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._releases import (
    ReleaseStore, current, previous, select, store_argument_spec, summary)


def run_module(module):
    params = module.params
    module.access.check_labels([params["name"]])
    history = ReleaseStore.for_module(module).history(params["name"])
    result = {
        "changed": False,
        "current": current(history),
        "latest": history[-1] if history else None,
        "previous": summary(previous(history)),
        "history": history if params["full"] else [summary(r) for r in history],
    }
    if params.get("release"):
        result["selected"] = select(history, params["release"], params["name"])
    return result


def main():
    argument_spec = store_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        release=dict(type="str"),
        full=dict(type="bool", default=False),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True)
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
