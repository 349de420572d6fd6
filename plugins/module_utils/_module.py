# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection shares: the site options, the clients, and failing well.

A module builds its own argument spec, adds ``site_argument_spec()`` (documented by the
``hpc.vcluster.site`` doc fragment) and runs its work inside ``SiteModule.run`` so that an
API or configuration error becomes one readable ``msg`` instead of a traceback.
"""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, HAS_REQUESTS, REQUESTS_IMPORT_ERROR
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SITE_KINDS, SITE_OPTION_ENV, SiteError


def site_argument_spec():
    """The site connection options; each falls back to its VCLUSTER_* environment variable."""
    def env(option):
        return (env_fallback, [SITE_OPTION_ENV[option]])

    return dict(
        site_kind=dict(type="str", choices=list(SITE_KINDS), fallback=env("site_kind")),
        api_url=dict(type="str", fallback=env("api_url")),
        site_name=dict(type="str", fallback=env("site_name")),
        token=dict(type="str", no_log=True, fallback=env("token")),
        token_file=dict(type="path", fallback=env("token_file")),
        client_id=dict(type="str", fallback=env("client_id")),
        client_secret=dict(type="str", no_log=True, fallback=env("client_secret")),
        token_url=dict(type="str", fallback=env("token_url")),
        ca_path=dict(type="path", fallback=env("ca_path")),
        validate_certs=dict(type="bool", fallback=env("validate_certs")),
        timeout=dict(type="float", fallback=env("timeout")),
        service_urls=dict(type="dict", fallback=env("service_urls")),
    )


class SiteModule(AnsibleModule):
    """An AnsibleModule that talks to a site."""

    def __init__(self, argument_spec, **kwargs):
        spec = site_argument_spec()
        spec.update(argument_spec)
        super(SiteModule, self).__init__(argument_spec=spec, **kwargs)
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
        self._clients = None

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
        except (ApiError, SiteError) as exc:
            extra = {"api_error": exc.to_result()} if isinstance(exc, ApiError) else {}
            self.fail_json(msg=str(exc), **extra)
        self.exit_json(**result)
