# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading image labels from an OCI registry (the Distribution API v2), for image_info.

OpenCHAMI publishes images to a registry (image-builder's ``publish_registry``); their
provenance labels are in each image's config blob: tags list -> manifest (``config.digest``)
-> config blob (``config.Labels``). Multi-arch indexes are followed to their first
manifest. Registries that want a bearer token answer 401 with ``WWW-Authenticate``; the
anonymous/basic token flow is followed once.
"""
from __future__ import annotations

import re

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, HAS_REQUESTS, problem_detail, requests

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
))
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class RegistryClient(object):
    def __init__(self, registry, username=None, password=None, verify=True, timeout=30, scheme="https", session=None):
        if not HAS_REQUESTS:
            raise ApiError("the Python library 'requests' is required to read a registry")
        host, dummy, namespace = registry.partition("/")
        self.host = host
        self.namespace = namespace.strip("/")
        self.base = "%s://%s/v2" % (scheme, host)
        self.auth = (username, password) if username else None
        self.verify = verify
        self.timeout = timeout
        self.session = session or requests.Session()
        self._bearer = None

    def _get(self, path, headers=None):
        url = self.base + path
        hdrs = dict(headers or {})
        if self._bearer:
            hdrs["Authorization"] = "Bearer %s" % self._bearer
        try:
            response = self.session.get(url, headers=hdrs, auth=None if self._bearer else self.auth, verify=self.verify,
                                        timeout=self.timeout)
            if response.status_code == 401 and not self._bearer and "Bearer" in response.headers.get("WWW-Authenticate", ""):
                self._bearer = self._token(response.headers["WWW-Authenticate"])
                return self._get(path, headers)
        except requests.exceptions.RequestException as exc:
            raise ApiError("REGISTRY GET %s: cannot reach %s (%s)" % (path, self.host, type(exc).__name__))
        if response.status_code != 200:
            raise ApiError("REGISTRY GET %s: %d %s: %s" % (path, response.status_code, response.reason or "",
                                                           problem_detail(response)), status=response.status_code)
        return response

    def _token(self, challenge):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = fields.pop("realm", None)
        if not realm:
            raise ApiError("REGISTRY %s: bearer challenge without realm" % self.host)
        response = self.session.get(realm, params=fields, auth=self.auth, verify=self.verify, timeout=self.timeout)
        if response.status_code != 200:
            raise ApiError("REGISTRY token %s: %d" % (realm, response.status_code))
        body = response.json()
        return body.get("token") or body.get("access_token")

    def repositories(self):
        repos = self._get("/_catalog").json().get("repositories") or []
        if self.namespace:
            repos = [r for r in repos if r.startswith(self.namespace + "/")]
        return sorted(repos)

    def tags(self, repo):
        return sorted(self._get("/%s/tags/list" % repo).json().get("tags") or [])

    def image(self, repo, tag):
        """(manifest digest, config) of repo:tag."""
        response = self._get("/%s/manifests/%s" % (repo, tag), headers={"Accept": MANIFEST_TYPES})
        manifest = response.json()
        digest = response.headers.get("Docker-Content-Digest", "")
        if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            first = (manifest.get("manifests") or [{}])[0]
            response = self._get("/%s/manifests/%s" % (repo, first.get("digest")), headers={"Accept": MANIFEST_TYPES})
            manifest = response.json()
        config_digest = (manifest.get("config") or {}).get("digest")
        config = self._get("/%s/blobs/%s" % (repo, config_digest)).json() if config_digest else {}
        return digest, config_digest or "", config
