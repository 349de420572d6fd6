# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the lifecycle role (update and rollback): what changes per node and per vService,
the batches of a rolling update, the manifest a rollback applies, and the failed nodes heal acts on. The logic is in
module_utils/_lifecycle.py; each filter's documentation is in the .yml file of its name.
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc.vcluster.plugins.module_utils._lifecycle import (
    LifecycleError, batches, failed_nodes, node_changes, release_manifest, vservice_changes)


def _wrap(name, func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except LifecycleError as exc:
            raise AnsibleFilterError("hpc.vcluster.%s: %s" % (name, exc))
    return run


class FilterModule(object):
    def filters(self):
        return {
            "vcluster_node_changes": _wrap("vcluster_node_changes", node_changes),
            "vcluster_vservice_changes": _wrap("vcluster_vservice_changes", vservice_changes),
            "vcluster_batches": _wrap("vcluster_batches", batches),
            "vcluster_release_manifest": _wrap("vcluster_release_manifest", release_manifest),
            "vcluster_failed_nodes": _wrap("vcluster_failed_nodes", failed_nodes),
        }
