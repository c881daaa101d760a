"""Reviewers' own Label Studio accounts: each person labels as themselves, so every annotation is
attributed to an account (``annotator`` in the pulled rows), never to a shared admin login.

``add(name, email)`` creates the account through Label Studio's API (it joins the organization) and,
for the local server, sets a one-time password with Label Studio's own ``reset_password`` command; the
password is returned once, to be handed to the reviewer, and stored nowhere (the reviewer changes it
under Account & Settings). Against a remote server (``feedback.url``) the harness cannot set passwords:
the account is created and the administrator sends Label Studio's invite link or sets the password.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from typing import Any

from harness.config import CycleConfig
from harness.errors import HarnessError

__all__ = ["Reviewer", "add", "list_reviewers"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Reviewer:
    id: int
    name: str
    email: str
    password: str | None = None  # set only by add(), on the local server; never written anywhere

    def __repr__(self) -> str:
        return f"Reviewer(id={self.id}, name={self.name!r}, email={self.email!r}, password={'***' if self.password else None})"


def _client(config: CycleConfig) -> Any:
    from feedback import server

    fb = config.feedback
    return server.connect(server.credentials(fb.url, data_dir=fb.data_dir, token_env=fb.token_env))


def list_reviewers(config: CycleConfig) -> list[Reviewer]:
    """Every account on the server except the harness's admin and its scripted reviewers."""
    from feedback import server
    from feedback._project import with_retry
    from feedback.pull import SIMULATED_PREFIX

    client = _client(config)
    users = with_retry("listing users", lambda: list(client.users.list()))
    own = with_retry("asking who the token belongs to", lambda: server.harness_accounts(client))
    return [Reviewer(u.id, " ".join(p for p in (u.first_name, u.last_name) if p) or u.username or u.email, u.email)
            for u in users if str(u.email).lower() not in own and not str(u.email).startswith(SIMULATED_PREFIX)]


def _set_password(config: CycleConfig, email: str, password: str) -> None:
    """Label Studio's own 'reset_password' command, against the local server's database; the password goes
    on its standard input (no controlling terminal: getpass reads stdin), never on a command line."""
    from feedback import server

    fb = config.feedback
    venv = fb.venv or server.default_venv()
    exe = venv / "bin" / "label-studio"
    data_dir = server.data_dir(fb.data_dir)
    env = {**server.scrubbed_environ(),
           "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "DJANGO_DB": os.environ.get("DJANGO_DB", "sqlite")}
    proc = subprocess.run([str(exe), "reset_password", "--username", email], input=password + "\n", text=True,
                          capture_output=True, env=env, start_new_session=True, timeout=300)
    if proc.returncode != 0 or "successfully changed" not in proc.stdout:
        last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        raise HarnessError(f"Label Studio could not set the password of {email}: {last[0].replace(password, '***')}",
                           hint="set it in Label Studio (Organization > Members) or run 'label-studio reset_password'")


def add(config: CycleConfig, name: str, email: str) -> Reviewer:
    """Create a reviewer's account; on the local server with a fresh one-time password (returned once)."""
    from feedback import server
    from feedback._project import with_retry
    from feedback.pull import SIMULATED_PREFIX

    email = email.strip().lower()
    if email == server.ADMIN_EMAIL or email.startswith(SIMULATED_PREFIX):
        raise HarnessError(f"{email} is reserved (the operator's admin account, or the scripted reviewers': labels "
                           "from such an account would be counted as simulated)", hint="use the reviewer's own email")
    if not _EMAIL.match(email):
        raise HarnessError(f"'{email}' is not an email address", hint="harness feedback reviewers add 'Ana Lima' ana@example.org")
    if not name.strip():
        raise HarnessError("the reviewer's name is empty", hint="harness feedback reviewers add 'Ana Lima' ana@example.org")
    if any(r.email == email for r in list_reviewers(config)):
        raise HarnessError(f"a reviewer with the email {email} already exists",
                           hint="'harness feedback reviewers list' shows the accounts")
    first, _, last = name.strip().partition(" ")
    client = _client(config)
    user = with_retry("creating a reviewer's account", lambda: client.users.create(
        email=email, username=email.split("@")[0] + "-" + secrets.token_hex(2), first_name=first, last_name=last))
    password = None
    if config.feedback.url is None:  # the local server: set a one-time password
        password = secrets.token_urlsafe(12)
        _set_password(config, email, password)
    return Reviewer(user.id, name.strip(), email, password)
