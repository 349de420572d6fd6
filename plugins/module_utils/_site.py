# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site description shared by the inventory plugins and the modules.

A site is a management plane (OpenCHAMI or CSM) behind one API gateway. Both kinds
serve the same SMD, BSS and PCS contracts under different path prefixes and hand out
tokens from different endpoints; everything that differs lives in this file, so the
rest of the collection is site-neutral (the Resource Portability Interface).
"""
from __future__ import annotations

import json
import os
import re

from ansible.module_utils.errors import AnsibleFallbackNotFound

from ansible_collections.hpc.vcluster.plugins.module_utils._endpoint import TlsVerify

SITE_KINDS = ("openchami", "csm")

# Path prefix of each service behind the site's gateway (docs/architecture.md).
SERVICE_PREFIXES = {
    "openchami": {
        "smd": "/hsm/v2",
        "bss": "/boot/v1",
        "pcs": "/power-control/v1",
        "cloud_init": "/cloud-init",
        "fabric": "/apis/fabric-manager",
        "ufm": "/ufmRest",
        "token": "/oauth2/token",
    },
    "csm": {
        "smd": "/apis/smd/hsm/v2",
        "bss": "/apis/bss/boot/v1",
        "pcs": "/apis/power-control/v1",
        "bos": "/apis/bos/v2",
        "ims": "/apis/ims/v3",
        "sts": "/apis/sts",
        "fabric": "/apis/fabric-manager",
        "ufm": "/ufmRest",
        "token": "/keycloak/realms/shasta/protocol/openid-connect/token",
    },
}

# How each kind's token endpoint wants the client to authenticate: hydra (OpenCHAMI)
# defaults to client_secret_basic, Keycloak (CSM) takes the secret in the form.
TOKEN_AUTH_METHOD = {"openchami": "basic", "csm": "post"}

# The site options, with the environment variable each one falls back to. The module
# argument spec, the plugin DOCUMENTATION and the AWX credential type all use these names.
SITE_OPTION_ENV = {
    "site_kind": "VCLUSTER_SITE_KIND",
    "api_url": "VCLUSTER_API_URL",
    "site_name": "VCLUSTER_SITE_NAME",
    "token": "VCLUSTER_TOKEN",
    "token_file": "VCLUSTER_TOKEN_FILE",
    "client_id": "VCLUSTER_CLIENT_ID",
    "client_secret": "VCLUSTER_CLIENT_SECRET",
    "token_url": "VCLUSTER_TOKEN_URL",
    "ca_path": "VCLUSTER_CA_PATH",
    "validate_certs": "VCLUSTER_VALIDATE_CERTS",
    "timeout": "VCLUSTER_TIMEOUT",
    "service_urls": "VCLUSTER_SERVICE_URLS",
}

DEFAULT_TIMEOUT = 30


class SiteError(ValueError):
    """The site description is incomplete or wrong; the message says which option to fix."""


def nonempty_env_fallback(*names):
    """A module option fallback like env_fallback, except that an empty variable counts as unset.

    ``VCLUSTER_VALIDATE_CERTS=""`` must not turn TLS verification off, nor an empty
    ``VCLUSTER_TOKEN`` hide the token the next source would give.
    """
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return value
    raise AnsibleFallbackNotFound


def token_env_name(site_name):
    """The variable the ochami CLI reads a cluster's token from: ``my-site`` -> ``MY_SITE_ACCESS_TOKEN``."""
    return re.sub(r"[-\s]", "_", site_name).upper() + "_ACCESS_TOKEN"


def _as_bool(value, option):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "y"):
        return True
    if text in ("0", "false", "no", "off", "n"):
        return False
    raise SiteError("%s must be a boolean, got %r" % (option, value))


class Site(TlsVerify):
    """Where a site's services are and how to reach them (TLS, timeout)."""

    def __init__(self, kind, api_url, name=None, service_urls=None, ca_path=None,
                 validate_certs=True, timeout=DEFAULT_TIMEOUT, token_url=None):
        if kind not in SITE_KINDS:
            raise SiteError("site_kind must be one of %s, got %r" % (", ".join(SITE_KINDS), kind))
        if not api_url:
            raise SiteError("api_url is required (or set VCLUSTER_API_URL): the base URL of the %s API gateway" % kind)
        if not re.match(r"^https?://[^/\s]+", api_url):
            raise SiteError("api_url must be an http(s) URL such as https://api.example.org, got %r" % api_url)
        self.kind = kind
        self.api_url = api_url.rstrip("/")
        self.name = name or kind
        self.service_urls = dict(service_urls or {})
        unknown = sorted(set(self.service_urls) - set(SERVICE_PREFIXES["openchami"]) - set(SERVICE_PREFIXES["csm"]))
        if unknown:
            raise SiteError("service_urls has unknown services %s; known: %s" % (
                ", ".join(unknown), ", ".join(sorted(set(SERVICE_PREFIXES["openchami"]) | set(SERVICE_PREFIXES["csm"])))))
        if ca_path and not os.path.isfile(ca_path):
            raise SiteError("ca_path %s does not exist or is not a file" % ca_path)
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.token_url = token_url or self.service_url("token")

    def has_service(self, service):
        return service in self.service_urls or service in SERVICE_PREFIXES[self.kind]

    def service_url(self, service):
        """Base URL of a service: an absolute override, a relative override, or the kind's default prefix."""
        override = self.service_urls.get(service)
        if override:
            if re.match(r"^https?://", override):
                return override.rstrip("/")
            return self.api_url + "/" + override.strip("/")
        prefix = SERVICE_PREFIXES[self.kind].get(service)
        if prefix is None:
            raise SiteError("a %s site has no %s service; set service_urls.%s if yours does" % (self.kind, service, service))
        return self.api_url + prefix

    def describe(self):
        """A secret-free description, for messages and module results."""
        return {"kind": self.kind, "name": self.name, "api_url": self.api_url}

    @classmethod
    def from_options(cls, options):
        """Build a Site from option values (module params or plugin options), already env-resolved."""
        kind = options.get("site_kind")
        service_urls = options.get("service_urls") or {}
        if isinstance(service_urls, str):
            try:
                service_urls = json.loads(service_urls)
            except ValueError:
                raise SiteError("service_urls must be a mapping or a JSON object, got %r" % service_urls)
        timeout = options.get("timeout")
        try:
            timeout = float(timeout) if timeout not in (None, "") else DEFAULT_TIMEOUT
        except (TypeError, ValueError):
            raise SiteError("timeout must be a number of seconds, got %r" % options.get("timeout"))
        validate = options.get("validate_certs")
        return cls(
            kind=kind,
            api_url=options.get("api_url"),
            name=options.get("site_name"),
            service_urls=service_urls,
            ca_path=options.get("ca_path"),
            validate_certs=True if validate is None else _as_bool(validate, "validate_certs"),
            timeout=timeout,
            token_url=options.get("token_url"),
        )
