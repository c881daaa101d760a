import json
import os

from feedback import server


def test_secrets_are_made_owner_only_and_a_loosened_file_is_tightened_again(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_LS_TOKEN", raising=False)
    monkeypatch.delenv("HARNESS_LS_PASSWORD", raising=False)
    data = tmp_path / "ls"
    first = server._load_or_create_secrets(data)
    path = data / "secrets.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600" and oct(data.stat().st_mode & 0o777) == "0o700"
    assert json.loads(path.read_text())["token"] == first["token"] and len(first["token"]) >= 20
    os.chmod(path, 0o644)  # loosened by hand, or written by an older version
    os.chmod(data, 0o755)
    assert server._load_or_create_secrets(data) == first  # the same secrets, read back
    assert oct(path.stat().st_mode & 0o777) == "0o600" and oct(data.stat().st_mode & 0o777) == "0o700"
