"""Marks every nbval item (a cell of a committed notebook) with ``nbval`` (see pyproject.toml)."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if ".ipynb" in item.nodeid:
            item.add_marker(pytest.mark.nbval)
