# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: secret
short_description: Read a manifest's secret where it is used
version_added: 0.2.0
description:
  - >-
    A vCluster manifest never holds a secret in clear; it holds a reference
    (C({secret: {env: NAME}}), C({secret: {file: PATH}}), C(!vault) / C({secret: {vault: ...}}) or
    C({secret: {lookup: NAME, terms: [...]}})), which M(hpc.vcluster.vcluster_manifest) checks against the site's
    policy and returns as is.
  - This lookup reads the value of each reference, on the controller, in the task that uses it (the deploy playbook's
    task that gives a vService its variables, which has C(no_log)). A term that is not a reference is returned as it
    is, so a whole setting list can go through it.
  - Errors name the reference, never the value.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
options:
  _terms:
    description: Secret references, or other values (returned unchanged).
    required: true
    type: list
    elements: raw
notes:
  - Use it in a task with C(no_log) true; the value is in clear in that task's result otherwise.
  - C(file) references are absolute once M(hpc.vcluster.vcluster_manifest) has validated the manifest; C(vault) needs
    the play's vault password; C(lookup) runs the named lookup plugin with the given terms.
seealso:
  - module: hpc.vcluster.vcluster_manifest
"""

EXAMPLES = r"""
- name: Give a vService its settings, secrets read now
  ansible.builtin.set_fact:
    "{{ item.key }}": "{{ query('hpc.vcluster.secret', item.value) | first }}"
  loop: "{{ vcluster_vservice.vars | dict2items }}"
  loop_control:
    label: "{{ item.key }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One value per term; the secret's text for a reference, the term itself otherwise.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import secret_ref
from ansible_collections.hpc.vcluster.plugins.plugin_utils import _secrets


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        out = []
        for term in terms:
            ref = secret_ref(term)
            if ref is None:
                out.append(term)
                continue
            try:
                out.append(_secrets.resolve(ref, self._loader, self._templar, variables))
            except _secrets.SecretError as exc:
                raise AnsibleLookupError("hpc.vcluster.secret: %s" % exc)
        return out
