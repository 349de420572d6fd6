# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for IMS v3, CSM's Image Management Service (``/apis/ims/v3``).

A build is a recipe record (whose content, a kiwi-ng tarball on a real CSM, lives in S3),
a ``create`` job that names the recipe and an SSH public key record, and, once the job's
status is ``success``, the image record named by ``resultant_image_id``. Image metadata
is a string map patched one key per call (``{"metadata": {"operation": "set", "key",
"value"}}``). ``DELETE /images/{id}`` is a soft delete (the record moves to
``/deleted/images``). Job statuses include the undocumented ``packaging_artifacts``
(research-csm.md §4, §11).
"""
from __future__ import annotations

from ansible_collections.hpc.vcluster.plugins.module_utils._api import decode_json
from ansible_collections.hpc.vcluster.plugins.module_utils._wait import wait_for

JOB_DONE = ("success", "error")


class ImsClient(object):
    def __init__(self, transport, base_url):
        self.transport = transport
        self.base = base_url

    def _get(self, path, missing_ok=False):
        response = self.transport.request("GET", self.base + path, service="ims",
                                          expect=(200, 404) if missing_ok else None)
        if missing_ok and response.status_code == 404:
            return None
        return decode_json(response, "ims")

    def _post(self, path, body):
        return decode_json(self.transport.request("POST", self.base + path, service="ims", json_body=body), "ims")

    # -- recipes -----------------------------------------------------------------------
    def recipes(self):
        return self._get("/recipes") or []

    def recipe(self, recipe_id):
        return self._get("/recipes/%s" % recipe_id, missing_ok=True)

    def create_recipe(self, record):
        return self._post("/recipes", record) or {}

    def delete_recipe(self, recipe_id):
        self.transport.request("DELETE", self.base + "/recipes/%s" % recipe_id, service="ims", expect=(204, 404))

    # -- images ------------------------------------------------------------------------
    def images(self):
        return self._get("/images") or []

    def image(self, image_id):
        return self._get("/images/%s" % image_id, missing_ok=True)

    def set_metadata(self, image_id, metadata):
        for key, value in sorted(metadata.items()):
            self.transport.request("PATCH", self.base + "/images/%s" % image_id, service="ims",
                                   json_body={"metadata": {"operation": "set", "key": key, "value": str(value)}})

    def delete_image(self, image_id):
        self.transport.request("DELETE", self.base + "/images/%s" % image_id, service="ims", expect=(204, 404))

    # -- public keys -------------------------------------------------------------------
    def public_keys(self):
        return self._get("/public-keys") or []

    def create_public_key(self, name, public_key):
        return self._post("/public-keys", {"name": name, "public_key": public_key}) or {}

    # -- jobs ----------------------------------------------------------------------------
    def create_job(self, record):
        return self._post("/jobs", record) or {}

    def job(self, job_id):
        return self._get("/jobs/%s" % job_id, missing_ok=True) or {}

    def wait_job(self, job_id, timeout, interval=5.0, **kwargs):
        return wait_for(lambda: self.job(job_id), lambda j: j.get("status") in JOB_DONE, timeout=timeout,
                        interval=interval, what="IMS job %s" % job_id, **kwargs)
