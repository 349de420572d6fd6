# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a vService role's variables against the role's own contract, from inside the role.

hpc.vcluster.vcluster_manifest checks a manifest's config against the same contract before
any change; a play that uses the role directly (no manifest) gets the same rules from this
action, run on the controller by the role's first task. One implementation, so the two
can never disagree.
"""
from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import load_role
from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import (
    HAS_JSONSCHEMA, ManifestError, contract_errors, scrub)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("role_path", "prefix"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        role_path = self._task.args.get("role_path")
        if not role_path or not os.path.isfile(os.path.join(str(role_path), "meta", "vservice.yml")):
            raise AnsibleActionFail("role_path must be a vService role's directory (with meta/vservice.yml)")
        if not HAS_JSONSCHEMA:
            raise AnsibleActionFail("the Python library 'jsonschema' is required on the controller")
        role_path = str(role_path)
        prefix = self._task.args.get("prefix") or os.path.basename(os.path.normpath(role_path)) + "_"
        try:
            entry = load_role(role_path)
        except ManifestError as exc:
            raise AnsibleActionFail("the contract of %s cannot be read: %s" % (role_path, "; ".join(exc.errors)))
        config, secrets = {}, []
        for option in entry["argument_spec"]:
            if option.startswith(prefix) and option in task_vars:
                value = self._templar.template(task_vars[option])
                config[option[len(prefix):]] = value
                if option in entry["no_log"] and isinstance(value, str):
                    secrets.append(value)
        hidden = [k[len(prefix):] for k in entry["no_log"] if k.startswith(prefix)]
        errors = [scrub(e, secrets).replace("(top level)", "").replace("config.", prefix, 1)
                  for e in contract_errors(entry["config_schema"], config, "config", hidden)]
        if errors:
            result.update(failed=True, errors=errors, msg="the variables of %s break its contract "
                          "(meta/vservice.yml):\n  %s" % (os.path.basename(role_path), "\n  ".join(errors)))
            return result
        result.update(changed=False, checked=sorted(prefix + k for k in config))
        return result
