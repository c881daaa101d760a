"""A real Label Studio server for the integration tests, started once per test session."""

import os
from pathlib import Path

import pytest

from feedback import server


@pytest.fixture(scope="session")
def ls_data_dir(tmp_path_factory) -> Path:
    if not (server.default_venv() / "bin" / "label-studio").is_file():
        if os.environ.get("HARNESS_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail(f"Label Studio is not installed in {server.default_venv()} (scripts/setup.sh installs it)")
        pytest.skip("Label Studio venv not installed (scripts/setup.sh installs it; CI requires it)")
    data_dir = tmp_path_factory.mktemp("labelstudio")
    server.serve(data_dir=data_dir, timeout=300)
    yield data_dir
    server.stop(data_dir)
