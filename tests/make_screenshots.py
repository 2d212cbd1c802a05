"""Regenerate the README screenshots: the real app in Debian's headless Chromium via Playwright.

    python tests/make_screenshots.py            # writes assets/screenshots/{microphone,upload,url}.png

Input is speech from ../shared/data/zh-synth (a few test clips joined); the microphone tab is fed
through Chromium's fake capture device, so the recording path is exercised for real. The English
line uses CC-CEDICT glosses because Google is unreachable from the build machine.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.audio import SAMPLE_RATE, load_audio, write_audio  # noqa: E402
from tests.conftest import ROOT, clip_path, free_port, joined_audio, read_split, wait_http  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, FINISHED  # noqa: E402

OUT = ROOT / "assets" / "screenshots"


def joined_clips(n: int = 4) -> np.ndarray:
    rows = [r for r in read_split("test") if 8 <= len(r["sentence"]) <= 14][:n]
    return joined_audio(rows, 0.8)


def choose_cedict(page) -> None:
    page.get_by_label("English line").click()
    page.get_by_role("option", name="CC-CEDICT word glosses (offline)").click()


def wait_result(page) -> None:
    page.wait_for_function(FINISHED, timeout=180_000)
    page.wait_for_timeout(800)


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="zimu-shots-"))
    audio = joined_clips()
    write_audio(audio, tmp / "lesson.wav")
    write_audio(audio, tmp / "lesson.mp3")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=0x224466:s=320x180:r=10",
                    "-i", str(tmp / "lesson.mp3"), "-shortest", "-c:v", "libx264", "-c:a", "aac",
                    str(tmp / "lesson.mp4")], check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    app = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port), "--allow-local-urls"], cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, proc=app)
        fake_mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={tmp / 'lesson.wav'}%noloop"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + fake_mic)
            page = browser.new_page(viewport={"width": 1200, "height": 1500})

            page.goto(url)
            choose_cedict(page)
            page.get_by_role("tab", name="Upload").click()
            page.locator("#upload-file input[type=file]").set_input_files(str(tmp / "lesson.mp4"))
            page.locator("#upload-go").click()
            wait_result(page)
            page.screenshot(path=str(OUT / "upload.png"), full_page=True)

            page.goto(url)
            choose_cedict(page)
            page.get_by_role("tab", name="Video URL").click()
            page.locator("#url-box textarea, #url-box input").first.fill(
                f"http://127.0.0.1:{server.server_address[1]}/lesson.mp4")
            page.locator("#url-go").click()
            wait_result(page)
            page.screenshot(path=str(OUT / "url.png"), full_page=True)

            page.goto(url)
            choose_cedict(page)
            page.get_by_role("tab", name="Microphone").click()
            page.get_by_role("button", name="Record", exact=True).click()
            page.wait_for_timeout(int(audio.size / SAMPLE_RATE * 1000) + 500)
            page.get_by_role("button", name="Stop", exact=True).click()
            page.wait_for_timeout(1500)
            page.get_by_role("button", name="Transcribe recording").click()
            wait_result(page)
            page.screenshot(path=str(OUT / "microphone.png"), full_page=True)
            browser.close()

            # Practice: one sentence, recorded through the fake microphone.
            row = next(r for r in read_split("test") if r["path"].startswith("hsk2") and 8 <= len(r["sentence"]) <= 12)
            attempt = load_audio(clip_path(row))
            write_audio(attempt, tmp / "attempt.wav")
            fake_attempt = [a for a in fake_mic if "audio-capture" not in a] + [
                f"--use-file-for-fake-audio-capture={tmp / 'attempt.wav'}%noloop"]
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + fake_attempt)
            page = browser.new_page(viewport={"width": 1200, "height": 1500})
            page.goto(url)
            page.get_by_role("tab", name="Practice").click()
            page.locator("#practice-target textarea").fill(row["sentence"])
            box = page.locator("#practice-attempt")
            box.get_by_role("button", name="Record", exact=True).click()
            page.wait_for_timeout(int(attempt.size / SAMPLE_RATE * 1000) + 700)
            box.get_by_role("button", name="Stop", exact=True).click()
            page.wait_for_timeout(1000)
            page.locator("#practice-go").click()
            page.wait_for_function("document.querySelector('#practice-feedback .syl') !== null", timeout=180_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(OUT / "practice.png"), full_page=True)
            browser.close()
    finally:
        app.terminate()
        server.shutdown()
    print("wrote", *sorted(p.name for p in OUT.glob("*.png")))


if __name__ == "__main__":
    main()
