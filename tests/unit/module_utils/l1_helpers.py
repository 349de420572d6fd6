"""A transport on a fake site for the layer-1 client tests (no real sleeping)."""
from ansible_collections.hpc.vcluster.plugins.module_utils._api import Transport
from ansible_collections.hpc.vcluster.plugins.module_utils._auth import StaticToken
from ansible_collections.hpc.vcluster.plugins.module_utils._site import Site

URL = "https://site.example"


def transport(kind="openchami", token="tok", retries=3):
    sleeps = []
    return Transport(Site(kind, URL), StaticToken(token, "test") if token else None, retries=retries,
                     sleep=sleeps.append), sleeps
