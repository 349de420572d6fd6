# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site connection options, shared by every module (MODULES) and inventory plugin (PLUGINS)."""
from __future__ import annotations


class ModuleDocFragment(object):

    # Modules: options may also come from the environment (the fallbacks are listed in the
    # descriptions) and, in a play, once for all modules through module_defaults with
    # group/hpc.vcluster.site.
    MODULES = r"""
attributes:
  action_group:
    description: Use C(group/hpc.vcluster.site) in C(module_defaults) to set the site options once for all modules.
    support: full
    membership: [hpc.vcluster.site]
options:
  site_kind:
    description:
      - Kind of management plane the site runs.
      - If not set, the value of the E(VCLUSTER_SITE_KIND) environment variable is used; one of the two is required.
    type: str
    choices: [openchami, csm]
  api_url:
    description:
      - Base URL of the site's API gateway, for example V(https://demo.openchami.cluster:8443) or V(https://api-gw-service-nmn.local).
      - If not set, the value of the E(VCLUSTER_API_URL) environment variable is used; one of the two is required.
    type: str
  site_name:
    description:
      - Short name of the site. The OpenCHAMI token is read from the environment variable
        E(<SITE_NAME>_ACCESS_TOKEN) (upper case, C(-) and spaces as C(_)), as the ochami CLI does.
      - If not set, E(VCLUSTER_SITE_NAME) is used, then the site kind.
    type: str
  token:
    description:
      - Bearer token for the site's services.
      - If not set, E(VCLUSTER_TOKEN) is used. Tokens are looked for in this order, O(token),
        O(token_file), E(<SITE_NAME>_ACCESS_TOKEN), then the client credentials O(client_id) and O(client_secret).
    type: str
  token_file:
    description:
      - File holding a bearer token; re-read when a service answers 401, so an outside process may renew it.
      - If not set, E(VCLUSTER_TOKEN_FILE) is used.
    type: path
  client_id:
    description:
      - OAuth2 client for the client-credentials grant (on CSM, Keycloak's C(admin-client)).
      - If not set, E(VCLUSTER_CLIENT_ID) is used.
    type: str
  client_secret:
    description:
      - Secret of O(client_id).
      - If not set, E(VCLUSTER_CLIENT_SECRET) is used.
    type: str
  token_url:
    description:
      - Token endpoint for the client-credentials grant.
      - If not set, E(VCLUSTER_TOKEN_URL) is used, then the kind's default
        (C(/oauth2/token) on OpenCHAMI, C(/keycloak/realms/shasta/protocol/openid-connect/token) on CSM).
    type: str
  ca_path:
    description:
      - CA bundle (PEM) to verify the site's TLS certificate with.
      - If not set, E(VCLUSTER_CA_PATH) is used, then the system's trust store.
    type: path
  validate_certs:
    description:
      - Whether to verify the site's TLS certificate. Only turn this off against a test site.
      - If not set, E(VCLUSTER_VALIDATE_CERTS) is used, then V(true).
    type: bool
  timeout:
    description:
      - Seconds to wait for each API reply.
      - If not set, E(VCLUSTER_TIMEOUT) is used, then 30.
    type: float
  service_urls:
    description:
      - Per-service URL overrides, keyed by service (V(smd), V(bss), V(pcs), V(cloud_init), V(bos), V(ims),
        V(fabric), V(ufm), V(token)).
      - A value starting with C(/) replaces the service's path prefix; an absolute URL replaces its whole base URL
        (for example a PCS that is not behind the gateway).
      - If not set, E(VCLUSTER_SERVICE_URLS) (a JSON object) is used.
    type: dict
"""

    # Inventory plugins: the same options, each readable from its environment variable
    # (AWX turns inventory source variables and credentials into environment variables).
    PLUGINS = r"""
options:
  site_kind:
    description:
      - Kind of management plane the site runs. Each plugin has a fixed default
        (V(openchami) for P(hpc.vcluster.openchami#inventory), V(csm) for P(hpc.vcluster.csm#inventory)).
    type: str
    choices: [openchami, csm]
    env:
      - name: VCLUSTER_SITE_KIND
  api_url:
    description:
      - Base URL of the site's API gateway.
    type: str
    env:
      - name: VCLUSTER_API_URL
  site_name:
    description:
      - Short name of the site; the OpenCHAMI token is read from E(<SITE_NAME>_ACCESS_TOKEN).
    type: str
    env:
      - name: VCLUSTER_SITE_NAME
  token:
    description:
      - Bearer token. Tokens are looked for in this order, O(token), O(token_file),
        E(<SITE_NAME>_ACCESS_TOKEN), then the client credentials.
    type: str
    env:
      - name: VCLUSTER_TOKEN
  token_file:
    description:
      - File holding a bearer token; re-read when a service answers 401.
    type: path
    env:
      - name: VCLUSTER_TOKEN_FILE
  client_id:
    description:
      - OAuth2 client for the client-credentials grant (on CSM, Keycloak's C(admin-client)).
    type: str
    env:
      - name: VCLUSTER_CLIENT_ID
  client_secret:
    description:
      - Secret of O(client_id).
    type: str
    env:
      - name: VCLUSTER_CLIENT_SECRET
  token_url:
    description:
      - Token endpoint; defaults to the kind's (C(/oauth2/token) or Keycloak's C(shasta) realm).
    type: str
    env:
      - name: VCLUSTER_TOKEN_URL
  ca_path:
    description:
      - CA bundle (PEM) to verify the site's TLS certificate with.
    type: path
    env:
      - name: VCLUSTER_CA_PATH
  validate_certs:
    description:
      - Whether to verify the site's TLS certificate.
    type: bool
    default: true
    env:
      - name: VCLUSTER_VALIDATE_CERTS
  timeout:
    description:
      - Seconds to wait for each API reply.
    type: float
    default: 30
    env:
      - name: VCLUSTER_TIMEOUT
  service_urls:
    description:
      - Per-service URL overrides (V(smd), V(bss), V(pcs), ...); a value starting with C(/) replaces the path prefix,
        an absolute URL the whole base URL. From the environment, a JSON object.
    type: dict
    env:
      - name: VCLUSTER_SERVICE_URLS
"""
