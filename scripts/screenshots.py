"""Screenshots of the web app for the README: docs/app-continue.png and docs/app-classify.png.

    python scripts/screenshots.py             # starts `musicgpt serve` on a free port, then stops it
    python scripts/screenshots.py --url http://127.0.0.1:7860/   # a server already running

Needs `pip install -e '.[test]'` (gradio, playwright) and Debian's Chromium at /usr/bin/chromium;
playwright's own browser downloads are never used. The continuation is seeded, so the pictures
are the same each time for the same model.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
THEME, VOICES, SEED = "C4 D4 E4 F4 | G4:h", "4", "1"  # harmonised in four voices
TO_CLASSIFY = ROOT / "examples" / "jackson-over-the-water.abc"
VIEWPORT = {"width": 1400, "height": 1000}


@contextlib.contextmanager
def served():
    """`musicgpt serve` on a free port of 127.0.0.1: its address, until the block ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "musicgpt", "serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"musicgpt serve exited with status {proc.returncode}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
                break
            time.sleep(0.3)
        else:
            raise SystemExit("musicgpt serve did not answer")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def shoot(url: str, out: Path) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url)
        page.fill("#theme textarea", THEME)
        page.click("#voices input")
        page.get_by_role("option", name=VOICES, exact=True).click()
        page.fill("#seed textarea, #seed input", SEED)
        page.click("#continue-button")
        page.wait_for_selector("#score .page svg", timeout=120_000)
        page.wait_for_timeout(1000)  # the waveform and the image finish drawing
        paths = [out / "app-continue.png", out / "app-classify.png"]
        page.screenshot(path=str(paths[0]), full_page=True)

        page.set_viewport_size({**VIEWPORT, "height": 600})  # the answer is short: no blank page below
        page.get_by_role("tab", name="Classify a score").click()
        page.set_input_files("#classify-file input[type=file]", str(TO_CLASSIFY))
        expect(page.locator("#classify-file a")).to_be_visible()
        page.click("#classify-button")
        expect(page.locator("#style-label h2")).to_be_visible(timeout=120_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(paths[1]), full_page=True)
        browser.close()
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running `musicgpt serve` (default: start one)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.url:
        paths = shoot(args.url, args.out)
    else:
        with served() as url:
            paths = shoot(url, args.out)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
