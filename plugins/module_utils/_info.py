# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the read modules of nodes share (power_info, boot_params_info): the targets, a missing label, the run."""
from __future__ import annotations

from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._targets import (
    TARGET_MUTUALLY_EXCLUSIVE, TARGET_REQUIRED_ONE_OF, module_targets, target_argument_spec)


def run_target_info(read, extra_spec=None):
    """Build the module (``nodes`` or ``label``, ``missing_ok``, ``extra_spec``), resolve its targets, exit with ``read(module, targets)``."""
    argument_spec = target_argument_spec()
    argument_spec.update(missing_ok=dict(type="bool", default=False))
    argument_spec.update(extra_spec or {})
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True,
                        mutually_exclusive=TARGET_MUTUALLY_EXCLUSIVE, required_one_of=TARGET_REQUIRED_ONE_OF)

    def work():
        targets = module_targets(module, allow_empty=True, missing_ok=module.params["missing_ok"])
        result = read(module, targets)
        result.update(changed=False, nodes=targets)
        return result

    module.run(work)
