# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A single service outside the site's management plane (a DNS server, a Kubernetes API).

The transport (``_api.Transport``) was written for a site; these services only need the
part of a site it reads: where the service is, how to check TLS, how long to wait. This
class is that part, so the same retries, error messages and secret hygiene apply.
"""
from __future__ import annotations

import os
import re


class EndpointError(ValueError):
    """The endpoint's settings are unusable; the message names the option."""


class TlsVerify(object):
    """What a site and an endpoint share: ``validate_certs`` and ``ca_path`` made into requests' ``verify``."""

    validate_certs = True
    ca_path = None

    @property
    def verify(self):
        """The ``verify`` argument for requests: a CA bundle, or a boolean."""
        if not self.validate_certs:
            return False
        return self.ca_path or True


class Endpoint(TlsVerify):
    """Where one service is, and how to reach it."""

    def __init__(self, name, api_url, option="api_url", ca_path=None, validate_certs=True, timeout=30.0):
        if not api_url:
            raise EndpointError("%s is required: the base URL of the %s" % (option, name))
        if not re.match(r"^https?://[^/\s@]+(/[^\s]*)?$", api_url):
            # a URL may carry user:password@: never quote that part
            shown = re.sub(r"^([a-z]+://)[^/@]*@", r"\1...@", api_url[:80])
            raise EndpointError("%s must be an http(s) URL such as https://host:port, without credentials, got %r"
                                % (option, shown))
        if ca_path and not os.path.isfile(ca_path):
            raise EndpointError("ca_path %s does not exist or is not a file" % ca_path)
        self.name = name
        self.api_url = api_url.rstrip("/")
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = timeout

    def url(self, path):
        return self.api_url + path
