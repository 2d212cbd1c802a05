"""Regenerate the README screenshots: the real app in Debian's headless Chromium via Playwright.

    python tests/make_screenshots.py                 # every screenshot in assets/screenshots/
    python tests/make_screenshots.py --only player   # the study player's: player.png, card.png, burned.png

Input is speech from ../shared/data/zh-synth (a few test clips joined); the microphone tab is fed
through Chromium's fake capture device, so the recording path is exercised for real. The English
line uses CC-CEDICT glosses because Google is unreachable from the build machine.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.speech.audio import SAMPLE_RATE, load_audio, write_audio  # noqa: E402
from tests.conftest import ROOT, clip_path, free_port, joined_audio, read_split, wait_http  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, FINISHED, check_an_attempt  # noqa: E402

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


def make_media(tmp: Path) -> np.ndarray:
    """lesson.wav/.mp3/.mp4 (the tabs' input) and study.mp4 (the player's: 640x360, a gradient)."""
    audio = joined_clips()
    write_audio(audio, tmp / "lesson.wav")
    write_audio(audio, tmp / "lesson.mp3")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=0x224466:s=320x180:r=10",
                    "-i", str(tmp / "lesson.mp3"), "-shortest", "-c:v", "libx264", "-c:a", "aac",
                    str(tmp / "lesson.mp4")], check=True)
    rows = [r for r in read_split("test") if 9 <= len(r["sentence"]) <= 13][4:8]
    write_audio(joined_audio(rows, 1.2), tmp / "study.wav")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "gradients=s=640x360:r=10:c0=0x1d3557:c1=0x2a9d8f:speed=0.02", "-i", str(tmp / "study.wav"),
                    "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(tmp / "study.mp4")],
                   check=True)
    return audio


def tab_shots(p, url: str, tmp: Path, audio: np.ndarray, media_url: str) -> None:
    fake_mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={tmp / 'lesson.wav'}%noloop"]
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
    page.locator("#url-box textarea, #url-box input").first.fill(media_url)
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


def practice_shot(p, url: str, tmp: Path) -> None:
    """One sentence, recorded through the fake microphone."""
    row = next(r for r in read_split("test") if r["path"].startswith("hsk2") and 8 <= len(r["sentence"]) <= 12)
    attempt = load_audio(clip_path(row))
    write_audio(attempt, tmp / "attempt.wav")
    fake_attempt = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={tmp / 'attempt.wav'}%noloop"]
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + fake_attempt)
    page = browser.new_page(viewport={"width": 1200, "height": 1500})
    page.goto(url)
    page.get_by_role("tab", name="Practice").click()
    page.locator("#practice-target textarea").fill(row["sentence"])
    check_an_attempt(page, attempt.size / SAMPLE_RATE, timeout=180_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / "practice.png"), full_page=True)
    browser.close()


def player_shots(p, url: str, tmp: Path) -> None:
    """The study player paused inside the second line, words of HSK 3+ underlined, two words saved and a
    word's card open; then a frame of the burned-in video."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1200, "height": 1500}, accept_downloads=True)
    page.goto(url)
    choose_cedict(page)
    page.get_by_role("tab", name="Upload").click()
    page.locator("#upload-file input[type=file]").set_input_files(str(tmp / "study.mp4"))
    page.locator("#upload-go").click()
    wait_result(page)
    media = "document.querySelector('.zimu-player .zimu-media')"
    page.wait_for_function(f"{media}.readyState >= 2", timeout=30_000)
    cue = page.evaluate("window.zimuPlayer.data.cues")[1]
    page.evaluate(f"{media}.currentTime = {(cue['start'] + cue['end']) / 2}")
    page.locator(".zimu-controls select[data-action=level]").select_option("3")
    for word in page.locator("#transcript .word.above-level").all()[:2]:
        word.click()
        page.locator(".zimu-card .card-save").click()
    page.mouse.click(5, 5)
    page.locator(f"#transcript .cue[data-i='{cue['i']}'] .cue-time").click()
    page.evaluate(f"{media}.pause(); {media}.currentTime = {(cue['start'] + cue['end']) / 2}")
    page.locator("#study-player").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.locator(".zimu-captions .word").nth(1).hover()
    page.wait_for_timeout(500)
    scroll = page.evaluate("window.scrollY")
    top = page.locator("#study-player").bounding_box()["y"] + scroll
    end = page.locator("#transcript").bounding_box()
    page.screenshot(path=str(OUT / "player.png"), full_page=True,
                    clip={"x": 0, "y": top - 10, "width": 1200, "height": end["y"] + scroll + end["height"] - top + 20})
    page.locator("#burn").click()
    page.locator("#download-burned").wait_for(state="visible", timeout=300_000)
    with page.expect_download() as info:
        page.locator("#download-burned").click()
    info.value.save_as(tmp / "burned.mp4")
    browser.close()
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-ss", f"{(cue['start'] + cue['end']) / 2:.2f}", "-i",
                    str(tmp / "burned.mp4"), "-frames:v", "1", str(OUT / "burned.png")], check=True)


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["tabs", "practice", "player"], action="append",
                        help="only these screenshots (repeatable; default: all)")
    only = set(parser.parse_args(argv).only or ["tabs", "practice", "player"])
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="zimu-shots-"))
    audio = make_media(tmp)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    app = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port), "--allow-local-urls"], cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, proc=app)
        with sync_playwright() as p:
            if "tabs" in only:
                tab_shots(p, url, tmp, audio, f"http://127.0.0.1:{server.server_address[1]}/lesson.mp4")
            if "practice" in only:
                practice_shot(p, url, tmp)
            if "player" in only:
                player_shots(p, url, tmp)
    finally:
        app.terminate()
        server.shutdown()
    print("wrote", *sorted(p.name for p in OUT.glob("*.png")))


if __name__ == "__main__":
    main()
