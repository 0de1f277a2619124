"""The page in a real browser (Debian's Chromium driven by Playwright): what a person does and sees.

Set SCREENSHOTS_DIR (e.g. `docs`) to keep the job view's screenshots (running, partial, completed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import requests

CHROMIUM = "/usr/bin/chromium"
KEY_A, KEY_B = "page-key-a", "page-key-b"
pytestmark = pytest.mark.timeout(180)

# Records every status a set row takes, so a test sees the rows change in place.
WATCH_ROWS = """() => {
  window.__loadedOnce = true;
  window.__seen = {};
  const note = (row) => (window.__seen[row.dataset.setNumber] ||= []).push(row.dataset.status);
  document.querySelectorAll('[data-set-number]').forEach(note);
  new MutationObserver((changes) => changes.forEach((c) => {
    const row = c.target.closest && c.target.closest('[data-set-number]');
    if (row && c.type === 'attributes' && c.attributeName === 'data-status') note(row);
    c.addedNodes.forEach((n) => n.dataset && n.dataset.setNumber && note(n));
  })).observe(document.getElementById('sets'), {subtree: true, childList: true, attributes: true});
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "apt-get install -y chromium (bash .ci/run does it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    where = os.environ.get("SCREENSHOTS_DIR")
    if where:
        page.screenshot(path=str(Path(where) / f"page-job-{name}.png"), full_page=False)


def row(page, number: int, status: str | None = None):
    selector = f'[data-set-number="{number}"]' + (f'[data-status="{status}"]' if status else "")
    return page.wait_for_selector(selector)


def test_write_watch_retry_and_download_in_the_browser(make_stack, page, tmp_path):
    stack = make_stack(OFFLINE_FAIL_FIRST_RUN_SETS="2", OFFLINE_LATENCY_S="1", RETRY_BACKOFF_BASE="2",
                       concurrency=1)
    page.goto(stack.base_url + "/")
    page.fill("#idea", "A lighthouse keeper finds a map inside a storm")
    page.fill("#total-segments", "3")
    page.fill("#segments-per-set", "1")
    page.fill("#max-retries", "1")
    page.click("#generate")
    page.wait_for_url("**/jobs/*/view")
    job_id = page.url.rstrip("/").split("/")[-2]
    page.evaluate(WATCH_ROWS)
    retrying = row(page, 2, "retrying")  # its first attempt failed; the next one is 2 s away
    assert "OFFLINE_FAIL_FIRST_RUN_SETS" in retrying.inner_text()
    assert retrying.query_selector("td:last-child").inner_text().strip()  # when it tries again
    screenshot(page, "running")
    row(page, 3, "success")
    failed = row(page, 2, "failed")
    assert "Failed to generate set 2 after 2 attempts" in failed.inner_text()
    page.wait_for_selector('#job[data-state="partial"]')
    seen = page.evaluate("window.__seen")
    assert seen["2"][-1] == "failed" and "retrying" in seen["2"]  # the row changed in place
    assert seen["1"][-1] == "success"
    assert page.locator("#timeline rect.bar").count() >= 4
    assert page.locator("#timeline rect.wait").count() >= 1  # the backoff wait between set 2's attempts
    assert "offline writer" in page.locator("#timeline rect.bar.error title").first.text_content()
    page.wait_for_selector("#bible:not([hidden]) #bible-cast dt")
    screenshot(page, "partial")

    page.click("#retry-failed")
    row(page, 2, "success")
    page.wait_for_selector('#job[data-state="completed"]')
    assert page.evaluate("window.__loadedOnce") is True  # no reload happened
    assert page.locator("#timeline rect.bar").count() >= 5
    page.wait_for_selector("#screenplay-box:not([hidden])")
    screenshot(page, "completed")
    with page.expect_download() as download:
        page.click('a[data-format="pdf"]')
    saved = tmp_path / "script.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")

    page.goto(stack.base_url + "/")
    listed = page.wait_for_selector(f'#jobs tr[data-job-id="{job_id}"][data-state="completed"]')
    assert "3 / 3 sets" in listed.inner_text()


def test_ideas_and_model_text_are_shown_as_text_under_a_strict_policy(offline_stack, page):
    idea = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> & a storm'
    job_id = offline_stack.generate(idea=idea, total_segments=2, segments_per_set=1)
    offline_stack.wait_job(job_id)
    response = page.goto(f"{offline_stack.base_url}/jobs/{job_id}/view")
    policy = response.headers["content-security-policy"]
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"]
    page.wait_for_selector('#job[data-state="completed"]')
    page.wait_for_selector("#bible:not([hidden])")
    assert page.locator("#job-idea").text_content() == idea
    assert "<script>" in page.locator("#bible-logline").text_content()  # the bible quotes the idea
    assert page.locator("main script, main img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert requests.get(offline_stack.base_url + "/", timeout=10).headers["Content-Security-Policy"] == policy
    export = requests.get(f"{offline_stack.base_url}/jobs/{job_id}/script?format=html", timeout=30)
    assert export.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "&lt;script&gt;" in export.text and "<script>" not in export.text


def test_with_api_keys_the_page_asks_once_and_shows_only_this_keys_jobs(make_stack, page):
    stack = make_stack(MOVIE_GEN_API_KEYS=f"{KEY_A},{KEY_B}", API_RATE_LIMIT="1000/minute")
    theirs = stack.post("/generate-movie-auto", headers={"Authorization": f"Bearer {KEY_A}"},
                        json={"idea": "Someone else's secret heist", "total_segments": 1}).json()["job_id"]
    page.goto(stack.base_url + "/")
    page.wait_for_selector("#key-prompt:not([hidden])")
    page.fill("#api-key", "not-a-key")
    page.click("#save-key")
    page.wait_for_selector("#key-prompt:not([hidden])")  # refused: asked again
    assert "refused" in page.locator("#key-error").text_content()
    page.fill("#api-key", KEY_B)
    page.click("#save-key")
    page.wait_for_selector("#jobs-empty:not([hidden])")
    assert page.locator(f'[data-job-id="{theirs}"]').count() == 0
    page.fill("#idea", "A choir that sings the tide in")
    page.fill("#total-segments", "2")
    page.fill("#segments-per-set", "1")
    page.click("#generate")
    page.wait_for_url("**/jobs/*/view")  # the key is kept for the tab: not asked again
    page.wait_for_selector('#job[data-state="completed"]')
    assert page.locator("[data-set-number]").count() == 2
    assert page.locator("#key-prompt").is_hidden()
    with page.expect_download() as download:
        page.click('a[data-format="csv"]')
    assert download.value.suggested_filename.endswith(".csv")
    page.goto(f"{stack.base_url}/jobs/{theirs}/view")
    page.wait_for_selector("#job-error:has-text('No such job')")
    assert page.locator("[data-set-number]").count() == 0
    assert "heist" not in page.content()
