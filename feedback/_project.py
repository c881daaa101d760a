"""Label Studio project helpers shared by push, pull and simulate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from harness.errors import HarnessError

T = TypeVar("T")
TEMPLATES = Path(__file__).resolve().parent / "templates"


def guidelines() -> str:
    return (TEMPLATES / "guidelines.md").read_text(encoding="utf-8")


def with_retry(what: str, fn: Callable[[], T], *, attempts: int = 6, first_delay: float = 1.0,
               already_done: Callable[[], bool] | None = None) -> T | None:
    """Retry transient server errors (restart, outage) with exponential backoff, then one clear error.

    For calls that are not safe to repeat (imports, new annotations), ``already_done`` is asked before
    each retry: a request that reached the server although its answer was lost is not sent twice.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            if attempt > 1 and already_done is not None and already_done():
                return None
            return fn()
        except HarnessError:
            raise
        except Exception as exc:  # httpx transport errors and 5xx come as several types
            code = getattr(exc, "status_code", None)
            if code is not None and 400 <= code < 500:
                body = str(getattr(exc, "body", "") or exc)[:300]
                raise HarnessError(f"Label Studio refused {what} (HTTP {code}): {body}",
                                   hint="check the project and its template in Label Studio") from None
            if attempt == attempts:
                raise HarnessError(f"Label Studio did not answer while {what} ({type(exc).__name__}) after {attempts} tries",
                                   hint="check that the server is up ('harness feedback status') and run the command again; "
                                        "nothing was lost") from None
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
    raise AssertionError("unreachable")


def find_project(client: Any, title: str) -> Any | None:
    for project in with_retry("listing projects", lambda: list(client.projects.list())):
        if project.title == title:
            return project
    return None


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.xml").read_text(encoding="utf-8")


def _normalized_xml(text: str) -> str:
    return "".join(text.split())


def get_or_create_project(client: Any, title: str, label_config: str, overlap: int) -> Any:
    project = find_project(client, title)
    if project is not None:
        if _normalized_xml(project.label_config or "") != _normalized_xml(label_config):
            raise HarnessError(f"Label Studio project '{title}' uses another labeling template",
                               hint="set feedback.project to a new title (or feedback.template back to the one it was made with)")
        return project
    try:
        return client.projects.create(title=title, label_config=label_config, expert_instruction=guidelines(),
                                      show_instruction=True, maximum_annotations=overlap,
                                      description="Blind review of model responses (harness)")
    except Exception as exc:
        body = getattr(exc, "body", None) or str(exc)
        raise HarnessError(f"Label Studio refused to create the project '{title}': {str(body)[:400]}",
                           hint=f"check feedback.project and the labeling template (shipped ones are in {TEMPLATES})") from None


def project_tasks(client: Any, project_id: int) -> dict[str, tuple[int, dict[str, Any]]]:
    """task_key -> (Label Studio task id, task data) for every task already in the project."""
    tasks = with_retry("listing tasks", lambda: list(client.tasks.list(project=project_id, fields="all")))
    return {t.data.get("task_key"): (t.id, t.data) for t in tasks if t.data and t.data.get("task_key")}
