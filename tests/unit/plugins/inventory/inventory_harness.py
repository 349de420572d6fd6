"""Helpers for the inventory plugin tests: the plugin loaded the way ansible-core loads it, and recorded SMD replies.

A module of its own (not conftest.py), since test directories of a pytest run share the ``conftest`` module name.

The plugins are loaded through ansible's collection loader (so their DOCUMENTATION, fragments included, defines
their options, exactly as ``ansible-inventory`` sees them). That loader must own the ``ansible_collections``
package; modules imported earlier through plain ``sys.path`` (tests/conftest.py) are dropped first.
"""
import json
import os
import pathlib
import sys

import responses
import yaml

from ansible._internal._datatag._tags import Origin
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import _InventoryDataWrapper
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, inventory_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig

ROOT = pathlib.Path(__file__).resolve().parents[4]
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"

if AnsibleCollectionConfig.collection_finder is None:
    for _name in [m for m in sys.modules if m == "ansible_collections" or m.startswith("ansible_collections.")]:
        del sys.modules[_name]
    init_plugin_loader([str(ROOT / ".collections")])

OC_URL = "https://oc.example.org:8443"
CSM_URL = "https://api-gw-service-nmn.local"
OC_SMD = OC_URL + "/hsm/v2"
CSM_SMD = CSM_URL + "/apis/smd/hsm/v2"
KEYCLOAK = CSM_URL + "/keycloak/realms/shasta/protocol/openid-connect/token"


def fixture(name):
    path = FIXTURES / name
    return json.loads(path.read_text()) if name.endswith(".json") else path.read_text()


class Recorder(object):
    """Stands in for ansible's Display on the plugin: keeps warnings and verbose lines."""

    def __init__(self):
        self.warnings, self.verbose = [], []

    def warning(self, msg, *args, **kwargs):
        self.warnings.append(msg)

    def _v(self, msg, *args, **kwargs):
        self.verbose.append(msg)

    v = vv = vvv = vvvv = vvvvv = debug = display = _v

    def deprecated(self, *args, **kwargs):
        pass


class Run(object):
    """One parse of an inventory source file, as ansible-inventory does it (through the trust wrapper)."""

    def __init__(self, plugin, inventory, display):
        self.plugin, self.inventory, self.display = plugin, inventory, display

    @property
    def hosts(self):
        return self.inventory.hosts

    def hostvars(self, name):
        return self.inventory.hosts[name].get_vars()

    def members(self, group):
        return sorted(h.name for h in self.inventory.groups[group].get_hosts())

    def group_names(self):
        return set(self.inventory.groups) - {"all", "ungrouped"}


def load(name="hpc.vcluster.openchami"):
    plugin = inventory_loader.get(name)
    assert plugin is not None, "the plugin %s did not load" % name
    return plugin


def make_parse(tmp_path, monkeypatch):
    """parse(config dict or YAML text, plugin=..., cache=True) -> Run; also clears the VCLUSTER_* environment."""
    for key in list(os.environ):
        if key.startswith("VCLUSTER_") or key.endswith("_ACCESS_TOKEN"):
            monkeypatch.delenv(key)

    def _parse(config, plugin="hpc.vcluster.openchami", cache=True, inventory=None):
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        short = plugin.rsplit(".", 1)[-1]
        path = tmp_path / ("test.%s.yml" % short)
        path.write_text(text)
        instance = load(plugin)
        display = Recorder()
        instance.display = display
        inventory = inventory if inventory is not None else InventoryData()
        wrapper = _InventoryDataWrapper(inventory, target_plugin=instance, origin=Origin(description="test"))
        assert instance.verify_file(str(path))
        instance.parse(wrapper, DataLoader(), str(path), cache=cache)
        try:
            instance.update_cache_if_changed()       # what the inventory manager does after parse()
        except AttributeError:
            pass
        return Run(instance, inventory, display)

    return _parse


def register_openchami(url=OC_SMD, mock=responses):
    """The three recorded OpenCHAMI SMD replies (on ``mock``: the active RequestsMock, default the module's)."""
    mock.get(url + "/State/Components", json=fixture("openchami_components.json"))
    mock.get(url + "/memberships", json=fixture("openchami_memberships.json"))
    mock.get(url + "/Inventory/EthernetInterfaces", json=fixture("openchami_interfaces.json"))


def register_csm(url=CSM_SMD, mock=responses):
    """The recorded Keycloak token and CSM HSM replies."""
    mock.post(KEYCLOAK, json=fixture("keycloak_token.json"))
    mock.get(url + "/State/Components", json=fixture("csm_components.json"))
    mock.get(url + "/memberships", json=fixture("csm_memberships.json"))
    mock.get(url + "/Inventory/EthernetInterfaces", json=fixture("csm_interfaces.json"))
