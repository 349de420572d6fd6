# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter of the reconcile playbook: which nodes join and leave a running vCluster. The logic is in
module_utils/_reconcile.py; the documentation is in vcluster_reconcile.yml.
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc.vcluster.plugins.module_utils._reconcile import ReconcileError, reconcile


def vcluster_reconcile(plan, manifest, recorded, node_group="", label=None):
    try:
        return reconcile(plan, manifest, recorded, node_group=node_group, label=label)
    except ReconcileError as exc:
        raise AnsibleFilterError("hpc.vcluster.vcluster_reconcile: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"vcluster_reconcile": vcluster_reconcile}
