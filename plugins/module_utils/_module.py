# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection shares: the site options, the clients, and failing well.

A module builds its own argument spec, adds ``site_argument_spec()`` (documented by the
``hpc.vcluster.site`` doc fragment) and runs its work inside ``SiteModule.run`` so that an
API or configuration error becomes one readable ``msg`` instead of a traceback.
"""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hpc.vcluster.plugins.module_utils._access import AccessPolicy, access_argument_spec
from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, HAS_REQUESTS, REQUESTS_IMPORT_ERROR
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SITE_KINDS, SITE_OPTION_ENV, SiteError, nonempty_env_fallback
from ansible_collections.hpc.vcluster.plugins.module_utils._wait import WaitTimeout


def site_argument_spec():
    """The site connection options; each falls back to its VCLUSTER_* environment variable."""
    def env(option):
        return (nonempty_env_fallback, [SITE_OPTION_ENV[option]])

    return dict(
        site_kind=dict(type="str", choices=list(SITE_KINDS), fallback=env("site_kind")),
        api_url=dict(type="str", fallback=env("api_url")),
        site_name=dict(type="str", fallback=env("site_name")),
        token=dict(type="str", no_log=True, fallback=env("token")),
        token_file=dict(type="path", fallback=env("token_file")),
        client_id=dict(type="str", fallback=env("client_id")),
        client_secret=dict(type="str", no_log=True, fallback=env("client_secret")),
        token_url=dict(type="str", no_log=False, fallback=env("token_url")),
        ca_path=dict(type="path", fallback=env("ca_path")),
        validate_certs=dict(type="bool", fallback=env("validate_certs")),
        timeout=dict(type="float", fallback=env("timeout")),
        service_urls=dict(type="dict", fallback=env("service_urls")),
    )


class SiteModule(AnsibleModule):
    """An AnsibleModule that talks to a site.

    ``access_control=True`` adds the access options (``allowed_labels``,
    ``rbac_from_token``; documented by the ``hpc.vcluster.access`` fragment) and makes
    ``self.access`` the operator's policy. Every module of the ``site`` action group takes
    them, so that ``module_defaults`` can set them once for the group.
    """

    def __init__(self, argument_spec, access_control=False, **kwargs):
        spec = site_argument_spec()
        if access_control:
            spec.update(access_argument_spec())
        spec.update(argument_spec)
        super(SiteModule, self).__init__(argument_spec=spec, **kwargs)
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
        self._clients = None
        self._access = None
        self._access_control = access_control

    @property
    def access(self):
        """The labels this operator may manage (see _access.py); built on first use."""
        if self._access is None:
            if not self._access_control:
                self._access = AccessPolicy()
            else:
                token_source = self.clients.token_source if self.params.get("rbac_from_token") else None
                self._access = AccessPolicy.from_params(self.params, token_source)
        return self._access

    def diff_result(self, before, after):
        """A ``diff`` result entry, or an empty dict when the run is not in diff mode."""
        return {"diff": {"before": before, "after": after}} if self._diff else {}

    @property
    def clients(self):
        if self._clients is None:
            # imported here so that a missing 'requests' is reported by __init__, not at import
            from ansible_collections.hpc.vcluster.plugins.module_utils._clients import SiteClients
            if not self.params.get("site_kind"):
                raise SiteError("site_kind is required (or set VCLUSTER_SITE_KIND): openchami or csm")
            self._clients = SiteClients.from_options(self.params)
        return self._clients

    def run(self, work):
        """Call ``work()``, which returns the result dict; API and site errors fail the task readably."""
        try:
            result = work()
        except (ApiError, SiteError, WaitTimeout) as exc:
            extra = {"api_error": exc.to_result()} if isinstance(exc, ApiError) else {}
            self.fail_json(msg=str(exc), **extra)
        self.exit_json(**result)
