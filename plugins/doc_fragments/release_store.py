# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a vCluster's release records live: the site's S3 store (docs/releases.md)."""
from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  s3_url:
    description:
      - URL of the site's S3 store, path-style, for example V(http://demo.openchami.cluster:9000) (MinIO on OpenCHAMI).
      - On CSM it comes with the STS credentials (RGW) unless set here.
      - If not set, the value of the E(VCLUSTER_S3_URL) environment variable is used.
    type: str
  s3_access_key:
    description:
      - Access key of the site's S3 store (OpenCHAMI's MinIO keys, as image-builder uses them).
      - If not set, E(VCLUSTER_S3_ACCESS_KEY) is used, then E(S3_ACCESS). Without keys, a CSM site's STS
        (C(PUT /apis/sts/token)) gives temporary ones for the site token.
    type: str
  s3_secret_key:
    description:
      - Secret key of the site's S3 store.
      - If not set, E(VCLUSTER_S3_SECRET_KEY) is used, then E(S3_SECRET).
    type: str
  s3_region:
    description:
      - Region the S3 requests are signed for.
      - If not set, E(VCLUSTER_S3_REGION) is used, then V(us-east-1) (what MinIO and RGW accept by default).
    type: str
  release_bucket:
    description:
      - The bucket that holds the release records, C(<vcluster>/<seq>.json). Made on first use.
      - If not set, E(VCLUSTER_RELEASE_BUCKET) is used, then V(vcluster-releases).
    type: str
"""
