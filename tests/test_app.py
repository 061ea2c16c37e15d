"""`musicgpt serve` as a person uses it: a real server process, driven in headless Chromium.

Debian's Chromium (/usr/bin/chromium) and the playwright package are needed; playwright's own
browser downloads are never used. One server serves every test here (it loads the shipped models
once, as a user's would).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FIXTURES = Path(__file__).parent / "fixtures" / "golden" / "src"
CHORALE = FIXTURES / "chorales" / "bwv66.6.mxl"
THEME = "C4 D4 E4 F4 | G4:h"

BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="playwright is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(importlib.util.find_spec("gradio") is None,
                       reason="gradio is not installed (pip install -e '.[test]')"),
]


def browser_test(fn):
    for mark in BROWSER:
        fn = mark(fn)
    return fn


STARTUP_S = 90  # imports and both models, on a busy 2-core machine
ANSWER_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The page's address. The server runs in an empty folder, with its own TMPDIR, and is
    stopped (SIGTERM) at the end: the folder must still be empty, its temporary folder gone."""
    cwd, tmp, logs = (tmp_path_factory.mktemp(name) for name in ("cwd", "tmp", "logs"))
    port = _free_port()
    log = (logs / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "musicgpt", "serve", "--port", str(port)], cwd=cwd,
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(tmp)})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"musicgpt serve exited ({proc.returncode}):\n{(logs / 'serve.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"musicgpt serve did not answer in {STARTUP_S} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, (logs / "serve.log").read_text()
    assert not list(cwd.iterdir()), "the server wrote into its working folder"
    # (music21 and torch keep their own caches there: theirs to keep)
    assert not list(tmp.glob("musicgpt-serve-*")), "the server left its temporary folder behind"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(server)
    page.wait_for_selector("#theme textarea")
    yield page
    context.close()


@browser_test
def test_continue_a_theme_then_hear_see_and_download_it(page, tmp_path):
    import symusic
    from playwright.sync_api import expect

    page.fill("#theme textarea", THEME)
    page.fill("#seed textarea, #seed input", "1")
    page.click("#continue-button")
    page.wait_for_selector("#score .page svg", timeout=ANSWER_MS)  # verovio's engraving
    expect(page.locator("#continue-status")).to_contain_text("new bars")
    assert page.locator("#audio audio").count() >= 1
    expect(page.locator("#roll img")).to_be_visible()
    assert "Traceback" not in page.content()

    with page.expect_download() as download:
        page.locator("#midi a").first.click()
    path = tmp_path / "continued.mid"
    download.value.save_as(path)
    notes = sorted((n.time, n.pitch) for t in symusic.Score(str(path), ttype="quarter").tracks
                   for n in t.notes)
    theme = [(0.0, 60), (1.0, 62), (2.0, 64), (3.0, 65), (4.0, 67)]  # C4 D4 E4 F4 | G4:h
    assert len(notes) > len(theme)
    assert [(round(t, 3), p) for t, p in notes[:len(theme)]] == theme
    assert min(t for t, _ in notes[len(theme):]) >= 4.0  # the new notes come after the theme's


@browser_test
def test_classify_an_uploaded_chorale(page):
    from playwright.sync_api import expect

    from musicgpt.classifier.classify import load_classifier

    styles = load_classifier().styles
    page.get_by_role("tab", name="Classify a score").click()
    page.set_input_files("#classify-file input[type=file]", str(CHORALE))
    expect(page.locator("#classify-file a")).to_be_visible()  # uploaded: its download link shows
    page.click("#classify-button")
    shown = page.locator("#style-label h2")
    expect(shown).to_be_visible(timeout=ANSWER_MS)
    assert shown.inner_text().strip() in styles
    percentages = page.locator("#style-label .confidence").all_inner_texts()
    assert len(percentages) >= 2 and all(p.strip().endswith("%") for p in percentages)
    expect(page.locator("#mode-label h2")).to_be_visible()


@browser_test
def test_bad_input_shows_an_error_in_the_page(page, tmp_path):
    from playwright.sync_api import expect

    page.fill("#theme textarea", "C4 D4 X9")
    page.click("#continue-button")
    expect(page.locator("#continue-status")).to_contain_text("not a note: X9", timeout=ANSWER_MS)

    fake = tmp_path / "letter.mid"
    fake.write_text("Dear Sir, this is no MIDI file.\n")
    page.get_by_role("tab", name="Classify a score").click()
    page.set_input_files("#classify-file input[type=file]", str(fake))
    expect(page.locator("#classify-file a")).to_be_visible()
    page.click("#classify-button")
    status = page.locator("#classify-status")
    expect(status).to_contain_text("letter.mid: not a readable MIDI file", timeout=ANSWER_MS)
    assert "musicgpt-serve" not in status.inner_text()  # the server's own paths stay private
    assert "Traceback" not in page.content()


def test_serve_without_gradio_says_how_to_install():
    code = ("import sys; sys.modules['gradio'] = None  # as if not installed\n"
            "from musicgpt.cli import main; sys.exit(main(['serve']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["musicgpt: error: the web app needs gradio, which is not "
                                             "installed: pip install -e '.[app]'"]


def test_an_upload_over_the_limit_is_refused(tmp_path):
    from musicgpt.app import check_size
    from musicgpt.errors import MusicGPTError

    big = tmp_path / "big.mid"
    big.write_bytes(b"\0" * (2 * 2**20 + 1))
    assert check_size(big, 3) == big
    with pytest.raises(MusicGPTError, match=r"big.mid is 2.0 MB; this server takes files up to 2 MB"):
        check_size(big, 2)


def test_an_engraved_page_fits_its_column():
    from musicgpt.app import _fit

    assert _fit('<svg width="2100px" height="575px" version="1.1">').startswith(
        '<svg viewBox="0 0 2100 575" width="100%" version="1.1"')
