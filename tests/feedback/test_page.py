"""The Label Studio project page renders the review interface (headless Chromium screenshot)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from feedback import push, server

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _need_browser():
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if CHROMIUM is None:
        if os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")


def test_project_page_renders_review_interface(review_config, ls_data_dir, tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    pushed = push.run(review_config)
    task_id = json.loads(pushed.tasks_path.read_text().splitlines()[0])["task_id"]
    secrets = json.loads((ls_data_dir / "secrets.json").read_text())
    url = server.status(ls_data_dir).url
    shot = tmp_path / "review_page.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(f"{url}/user/login/")
        page.fill("input[name=email]", server.ADMIN_EMAIL)
        page.fill("input[name=password]", secrets["password"])
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/user/login" not in u, timeout=60_000)
        page.goto(f"{url}/projects/{pushed.project_id}/data?task={task_id}")
        for text in ("Which response is better?", "Pick the better response", "Safety flags for response A (left)",
                     "Question number"):
            page.get_by_text(text, exact=False).first.wait_for(timeout=90_000)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 20_000
    keep = Path(os.environ.get("HARNESS_SCREENSHOT_DIR", tmp_path))
    if keep != tmp_path:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / shot.name)
