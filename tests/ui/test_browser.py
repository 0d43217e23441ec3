"""One real browser test: headless Debian Chromium (Playwright drives /usr/bin/chromium) against
``enclave run --sync-samples`` started on a free localhost port.

Sign in as a sample user, ask about a sample document, wait for the streamed answer and a
citation of the right file; the screenshot lands in artifacts/ui-chat.png.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[str], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"enclave run exited {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"the UI did not come up in {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    base = tmp_path_factory.mktemp("browser")
    config = base / "enclave.toml"
    config.write_text('data_dir = "data"\n[llm]\nmax_answer_tokens = 80\n', encoding="utf-8")
    port = _free_port()
    log = base / "enclave-run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env["HF_HUB_OFFLINE"] = "1"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ui.launcher",
                "run",
                "--config",
                str(config),
                "--port",
                str(port),
                "--address",
                "127.0.0.1",
                "--sync-samples",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log, timeout=600)
        assert "erin-demo-2026" in log.read_text()  # demo accounts are printed on start
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_sign_in_ask_and_see_citation(served: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 1300},
        )
        try:
            page = browser.new_page()
            page.goto(served, wait_until="domcontentloaded")
            page.get_by_role("textbox", name="User name").fill("erin")
            page.get_by_role("textbox", name="Password").fill("erin-demo-2026")
            started = time.monotonic()
            page.get_by_role("button", name="Sign in").click()
            box = page.get_by_placeholder("Ask a question about your documents")
            box.wait_for(timeout=60_000)
            box.fill("What is the hotel cap per night in London?")
            box.press("Enter")

            citation = page.get_by_test_id("stExpander").filter(
                has_text="general/travel-and-expenses"
            )
            citation.first.wait_for(timeout=300_000)
            messages = page.get_by_test_id("stChatMessage")
            # The rerun after the stream replaces the streamed copy with the stored answer.
            expect(messages).to_have_count(2, timeout=60_000)
            answer = messages.last.inner_text()
            print(f"sign-in to cited answer: {time.monotonic() - started:.1f} s")
            assert "Sources" in answer
            assert "240" in answer or "hotel" in answer.lower(), answer
            # Model output never becomes a live link or image in the page.
            assert messages.last.locator("a[href^='http'], img").count() == 0
            citation.first.click()
            page.get_by_text("Cited passage").first.wait_for(timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "ui-chat.png").stat().st_size > 10_000
