# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One object per site that hands out its service clients over a single transport.

Modules and inventory plugins ask for ``clients.smd``, ``clients.bss``... and never build
URLs or sessions themselves; a client is made on first use, so a module that only talks
to SMD never needs the other services to exist on the site.
"""
from __future__ import annotations

import os

from ansible_collections.hpc.vcluster.plugins.module_utils._api import Transport
from ansible_collections.hpc.vcluster.plugins.module_utils._auth import build_token_source
from ansible_collections.hpc.vcluster.plugins.module_utils._site import Site
from ansible_collections.hpc.vcluster.plugins.module_utils._smd import SmdClient


class SiteClients(object):
    def __init__(self, site, token_source=None, transport=None, retries=4):
        self.site = site
        self.token_source = token_source
        self.transport = transport or Transport(site, token_source, retries=retries)
        self._cache = {}

    @classmethod
    def from_options(cls, options, environ=None, retries=4):
        """Clients for the site the options describe (module params or plugin options)."""
        site = Site.from_options(options)
        return cls(site, build_token_source(site, options, os.environ if environ is None else environ), retries=retries)

    def _client(self, name, factory):
        if name not in self._cache:
            self._cache[name] = factory()
        return self._cache[name]

    @property
    def smd(self):
        return self._client("smd", lambda: SmdClient(
            self.transport, self.site.service_url("smd"), put_members=self.site.kind == "openchami"))

    # The other services' clients are imported on first use, so a module pays only for what it talks to.
    @property
    def bss(self):
        from ansible_collections.hpc.vcluster.plugins.module_utils._bss import BssClient
        return self._client("bss", lambda: BssClient(self.transport, self.site.service_url("bss")))

    @property
    def pcs(self):
        from ansible_collections.hpc.vcluster.plugins.module_utils._pcs import PcsClient
        return self._client("pcs", lambda: PcsClient(self.transport, self.site.service_url("pcs")))

    @property
    def cloud_init(self):
        from ansible_collections.hpc.vcluster.plugins.module_utils._cloud_init import CloudInitClient
        return self._client("cloud_init", lambda: CloudInitClient(self.transport, self.site.service_url("cloud_init")))

    @property
    def bos(self):
        from ansible_collections.hpc.vcluster.plugins.module_utils._bos import BosClient
        return self._client("bos", lambda: BosClient(self.transport, self.site.service_url("bos")))

    @property
    def ims(self):
        from ansible_collections.hpc.vcluster.plugins.module_utils._ims import ImsClient
        return self._client("ims", lambda: ImsClient(self.transport, self.site.service_url("ims")))

    @property
    def fabric(self):
        from ansible_collections.hpc.vcluster.plugins.module_utils._fabric import FabricClient
        return self._client("fabric", lambda: FabricClient(self.transport, self.site.service_url("fabric")))

    def ufm(self, username, password):
        """The UFM client: UFM takes HTTP Basic credentials of its own, not the site token."""
        from ansible_collections.hpc.vcluster.plugins.module_utils._ufm import UfmClient
        return self._client("ufm", lambda: UfmClient(self.transport, self.site.service_url("ufm"), username, password))
