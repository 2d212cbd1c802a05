"""End to end in a real headless Chromium (Debian's) driven by Playwright: upload → transcript → SRT."""

from __future__ import annotations

import os
import shutil

import pysubs2
import pytest

from app.text import normalize_for_cer, traditional_only_chars
from tests.conftest import clip_path, read_split

CHROMIUM = os.environ.get("ZIMU_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1400})
        yield context.new_page()
        browser.close()


@pytest.mark.slow
def test_upload_clip_shows_transcript_and_downloads_srt(page, app_url, zh_synth, tmp_path):
    row = next(r for r in read_split("test") if len(r["sentence"]) >= 8)
    page.goto(app_url)
    page.get_by_role("tab", name="Upload").click()
    page.locator("#upload-file input[type=file]").set_input_files(str(clip_path(row)))
    page.locator("#upload-go").click()
    page.wait_for_function("document.querySelector('#transcript ruby') !== null", timeout=120_000)

    table = page.locator("#table").inner_text()
    assert any(0x4E00 <= ord(c) <= 0x9FFF for c in table)

    with page.expect_download() as info:
        page.locator("#download-srt").click()
    srt_path = tmp_path / "out.srt"
    info.value.save_as(srt_path)
    subs = pysubs2.load(str(srt_path), encoding="utf-8")
    assert len(subs) >= 1
    hanzi = "".join(e.plaintext.splitlines()[0] for e in subs)
    assert not traditional_only_chars(hanzi)
    ref = normalize_for_cer(row["sentence"])
    hyp = normalize_for_cer(hanzi)
    common = sum(1 for c in set(ref) if c in hyp)
    assert common >= len(set(ref)) // 2, (row["sentence"], hanzi)
    # Second line of each cue is pinyin with tone marks.
    assert any(ch in subs[0].plaintext for ch in "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ")
