"""A local Label Studio server: start, stop, status; or the address of an existing one.

Label Studio pins its own Django/openai/pyarrow, so it lives in its own virtual environment
(``feedback.venv``, default ``.venv-labelstudio`` beside the project, made by ``scripts/setup.sh``).
The server listens on 127.0.0.1 only, keeps its sqlite database under ``feedback.data_dir`` (default
``$HARNESS_HOME/labelstudio``, made 0700: the database holds the tokens), has sign-up disabled and its
SSRF protection on, and gets its admin account and API token from the environment
(``HARNESS_LS_TOKEN``, ``HARNESS_LS_PASSWORD``) or from a secret file created with mode 0600 on first
start. Tokens never come from a config file and are never printed, logged or written to a run.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_json, read_json
from harness.errors import HarnessError
from harness.models import harness_home

__all__ = ["ServerInfo", "Credentials", "serve", "stop", "status", "credentials", "connect", "harness_accounts", "default_venv",
           "wait_healthy", "data_dir", "scrubbed_environ", "SECRET_VARS"]

REPO = Path(__file__).resolve().parents[1]
ADMIN_EMAIL = "admin@harness.local"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    email: str = ADMIN_EMAIL

    def __repr__(self) -> str:  # never show the token
        return f"Credentials(url={self.url!r}, token='***', email={self.email!r})"


@dataclass(frozen=True)
class ServerInfo:
    url: str
    pid: int | None
    data_dir: Path
    healthy: bool
    log: Path | None = None


def default_venv() -> Path:
    return Path(os.environ.get("HARNESS_LS_VENV", REPO / ".venv-labelstudio"))


def _data_dir(data_dir: Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else harness_home() / "labelstudio"


def data_dir(configured: Path | None = None) -> Path:
    """The local server's data folder: ``feedback.data_dir``, else ``$HARNESS_HOME/labelstudio``."""
    return _data_dir(configured)


SECRET_VARS = ("LABEL_STUDIO_API_KEY", "HARNESS_LS_TOKEN", "HARNESS_LS_PASSWORD", "HF_TOKEN",
               "HUGGING_FACE_HUB_TOKEN", "MLFLOW_TRACKING_TOKEN", "HARNESS_LEDGER_KEY")


def scrubbed_environ() -> dict[str, str]:
    """This process's environment without our virtual env and without any secret (tokens, the ledger key):
    what Label Studio's processes get."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH")) and k not in SECRET_VARS}


def _private_dir(data_dir: Path) -> None:
    """The data folder holds the database (with the API tokens) and the secrets: owner only (0700)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if data_dir.stat().st_mode & 0o077:
        os.chmod(data_dir, 0o700)


def _secret_file(data_dir: Path) -> Path:
    return data_dir / "secrets.json"


def _load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    """Admin password and legacy API token: environment first, else a 0600 file made once."""
    path = _secret_file(data_dir)
    stored: dict[str, str] = {}
    if path.is_file():
        try:
            _private_dir(data_dir)
            if path.stat().st_mode & 0o077:  # made loose by hand, or by an older harness: owner only again
                os.chmod(path, 0o600)
        except OSError as exc:
            raise HarnessError(f"could not make {path} and its folder private to this user: {exc.strerror}",
                               hint="feedback.data_dir must be a folder of your own") from None
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise HarnessError(f"{path} is damaged (not JSON)", hint="restore it, or start from a new feedback.data_dir") from None
    env_token = os.environ.get("HARNESS_LS_TOKEN")
    if env_token and stored.get("token") and env_token != stored["token"]:
        # Label Studio applies the token only when it first creates the admin: a new one would never work.
        raise HarnessError("HARNESS_LS_TOKEN differs from the token this Label Studio was created with",
                           hint=f"unset HARNESS_LS_TOKEN, or start from a new feedback.data_dir (secrets in {path})")
    if env_token is not None and len(env_token) < 20:
        raise HarnessError("HARNESS_LS_TOKEN is too short (Label Studio needs a long token)",
                           hint="use at least 20 random characters, e.g. python -c 'import secrets; print(secrets.token_hex(20))'")
    token = env_token or stored.get("token") or secrets.token_hex(20)
    password = os.environ.get("HARNESS_LS_PASSWORD") or stored.get("password") or secrets.token_urlsafe(18)
    if not path.is_file():
        _private_dir(data_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"token": token, "password": password, "email": ADMIN_EMAIL}, fh)
    return {"token": token, "password": password}


def _state_path(data_dir: Path) -> Path:
    return data_dir / "server.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _healthy(url: str, timeout: float = 2.0) -> bool:
    if not url.startswith(("http://", "https://")):  # never file:// or another scheme urlopen would follow
        return False
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:  # nosec B310 (http(s) only, checked above)
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _healthy(url):
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log and log.is_file() else ""
            raise HarnessError(f"Label Studio exited during start-up (code {proc.returncode})\n{tail}",
                               hint=f"see the full log: {log}")
        time.sleep(1.0)
    raise HarnessError(f"Label Studio at {url} did not become healthy within {timeout:.0f}s",
                       hint=f"see its log: {log}" if log else "check the server")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _is_label_studio(pid: int | None) -> bool:
    """Alive and really our server (a stale pid after a reboot may belong to anything)."""
    if not _pid_alive(pid):
        return False
    try:
        return b"label-studio" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid


def status(data_dir: Path | None = None) -> ServerInfo | None:
    data_dir = _data_dir(data_dir)
    path = _state_path(data_dir)
    if not path.is_file():
        return None
    try:
        state = read_json(path)
    except (json.JSONDecodeError, OSError):
        return None
    alive = _is_label_studio(state.get("pid"))
    return ServerInfo(state["url"], state.get("pid") if alive else None, data_dir,
                      alive and _healthy(state["url"]), Path(state["log"]))


def serve(*, data_dir: Path | None = None, port: int | None = None, venv: Path | None = None,
          timeout: float = 240.0) -> ServerInfo:
    """Start a local Label Studio (or return the one already running from this data folder)."""
    data_dir = _data_dir(data_dir)
    running = status(data_dir)
    if running is not None and running.pid is not None:
        if not running.healthy:  # still starting (migrations): wait for it, never start a second one
            _log.info(f"Label Studio (pid {running.pid}) is still starting; waiting for it")
            wait_healthy(running.url, timeout, None, running.log)
        _log.info(f"Label Studio already running at {running.url} (pid {running.pid})")
        return status(data_dir)
    venv = Path(venv) if venv is not None else default_venv()
    exe = venv / "bin" / "label-studio"
    if not exe.is_file():
        raise HarnessError(f"Label Studio is not installed in {venv}",
                           hint="run scripts/setup.sh (it creates .venv-labelstudio), or set feedback.venv / HARNESS_LS_VENV")
    if port is None:
        port = _free_port()
    elif not _port_free(port):
        # Label Studio silently moves to port+1 when a port is busy; refuse instead.
        raise HarnessError(f"port {port} on 127.0.0.1 is busy", hint="choose another feedback.port, or leave it unset")
    _private_dir(data_dir)
    secrets_ = _load_or_create_secrets(data_dir)
    url = f"http://127.0.0.1:{port}"
    env = {
        **scrubbed_environ(),
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        # SQLite beside the data folder, unless the environment names a database (DJANGO_DB=default and
        # POSTGRE_NAME/USER/PASSWORD/HOST/PORT: PostgreSQL, for many reviewers; see docs/scale-out.md)
        "DJANGO_DB": os.environ.get("DJANGO_DB", "sqlite"),
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL, "LABEL_STUDIO_PASSWORD": secrets_["password"],
        "LABEL_STUDIO_USER_TOKEN": secrets_["token"], "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
        # SSRF protection stays on: the harness uses no webhooks, and Label Studio fetches no URL for it
        "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false", "SSRF_PROTECTION_ENABLED": "true",
        "LABEL_STUDIO_HOST": url,
    }
    log = data_dir / "server.log"
    _log.info(f"starting Label Studio on {url} (data in {data_dir}; first start runs migrations, ~1 min)")
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    atomic_write_json(_state_path(data_dir), {"url": url, "port": port, "pid": proc.pid, "log": str(log),
                                              "started": time.time()})
    try:
        wait_healthy(url, timeout, proc, log)
    except HarnessError:
        stop(data_dir)
        raise
    _log.done(f"Label Studio is up at {url}")
    return ServerInfo(url, proc.pid, data_dir, True, log)


def stop(data_dir: Path | None = None, *, timeout: float = 30.0) -> bool:
    """Stop the server started from this data folder; True if one was running."""
    data_dir = _data_dir(data_dir)
    info = status(data_dir)
    if info is None or info.pid is None:
        _state_path(data_dir).unlink(missing_ok=True)
        return False
    try:
        os.killpg(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(info.pid):
        try:  # reap it if it is our child
            os.waitpid(info.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.3)
    if _pid_alive(info.pid):
        try:
            os.killpg(info.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _state_path(data_dir).unlink(missing_ok=True)
    return True


def credentials(url: str | None = None, *, data_dir: Path | None = None, token_env: str = "LABEL_STUDIO_API_KEY") -> Credentials:
    """The server address and token: an explicit URL with a token from the environment, or the local server."""
    if url:
        token = os.environ.get(token_env)
        if not token:
            raise HarnessError(f"no API token for {url}: the environment variable {token_env} is not set",
                               hint=f"export {token_env}=<token from Label Studio: Account & Settings>")
        return Credentials(url.rstrip("/"), token)
    data_dir = _data_dir(data_dir)
    info = status(data_dir)
    if info is None or not info.healthy:
        raise HarnessError("no Label Studio server is reachable",
                           hint="start one with 'harness feedback serve', or set feedback.url (token in $LABEL_STUDIO_API_KEY)")
    return Credentials(info.url, _load_or_create_secrets(data_dir)["token"])


def harness_accounts(client: Any) -> frozenset[str]:
    """The logins the harness itself works under: the local server's admin and the owner of the API token
    (on a server of your own, ``feedback.url``, the account whose token the harness was given). Labels
    made under them are nobody in particular, so never a reviewer's."""
    owner = getattr(client.users.whoami(), "email", None)
    return frozenset({ADMIN_EMAIL, *([str(owner).strip().lower()] if owner else [])})


def connect(creds: Credentials) -> Any:
    """An SDK client, checked: a wrong token or URL is one clear error (the token is never shown)."""
    from label_studio_sdk import LabelStudio

    if not _healthy(creds.url, timeout=5):
        raise HarnessError(f"Label Studio at {creds.url} is not reachable",
                           hint="check feedback.url, or start a server with 'harness feedback serve'")
    client = LabelStudio(base_url=creds.url, api_key=creds.token, timeout=60)
    try:
        client.users.whoami()
    except Exception as exc:
        code = getattr(exc, "status_code", None)
        if code in (401, 403):
            raise HarnessError(f"Label Studio at {creds.url} rejected the API token (HTTP {code})",
                               hint="use a valid personal access token or legacy token") from None
        raise HarnessError(f"cannot talk to Label Studio at {creds.url}: {type(exc).__name__}") from None
    return client
