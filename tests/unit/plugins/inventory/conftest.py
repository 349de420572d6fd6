"""Fixtures of the inventory plugin tests; the helpers live in inventory_harness.py."""
import pytest

from inventory_harness import make_parse


@pytest.fixture
def parse(tmp_path, monkeypatch):
    """parse(config dict or YAML text, plugin=..., cache=True) -> Run; the VCLUSTER_* environment is cleared first."""
    return make_parse(tmp_path, monkeypatch)
