"""Fixtures for the module tests (the helpers live in vc_harness.py)."""
import pytest
import responses


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
