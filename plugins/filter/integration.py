# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the integration playbook: the temporary copy of a manifest and the run's JUnit XML. The
logic is in module_utils/_integration.py; the documentation is in vcluster_integration_copy.yml and
vcluster_junit.yml.
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc.vcluster.plugins.module_utils._integration import IntegrationError, junit_xml, temporary_copy


def vcluster_integration_copy(manifest, base_dir=None, suffix="it", counts=None, select=None, vlan=None, pkey=None,
                              validator_config=None):
    try:
        return temporary_copy(manifest, base_dir=base_dir, suffix=suffix, counts=counts, select=select,
                              vlan=vlan, pkey=pkey, validator_config=validator_config)
    except IntegrationError as exc:
        raise AnsibleFilterError("hpc.vcluster.vcluster_integration_copy: %s" % "; ".join(exc.errors))


def vcluster_junit(cases, suite="hpc.vcluster.integration"):
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise AnsibleFilterError("hpc.vcluster.vcluster_junit: a list of test case mappings is required")
    return junit_xml(suite, cases)


class FilterModule(object):
    def filters(self):
        return {"vcluster_integration_copy": vcluster_integration_copy, "vcluster_junit": vcluster_junit}
