"""The study player in a real headless Chromium (Debian's) driven by Playwright: a short video is
uploaded and transcribed once; then it plays with its captions, the transcript follows it, a click on
a line seeks, a word shows its card, three saved words become an Anki deck (opened here as zip +
SQLite), and the burned-in video shows the subtitles where the source has none."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import zipfile

import numpy as np
import pytest

from app.study.anki import WORD_FIELDS
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, FINISHED

pytestmark = pytest.mark.slow
MEDIA = "document.querySelector('.zimu-player .zimu-media')"


@pytest.fixture(scope="module")
def video(tmp_path_factory, zh_synth):
    """About 11 s: three sentences 1.5 s apart (three cues) over a still picture, H.264 + AAC."""
    from app.speech.audio import write_audio
    from tests.conftest import joined_audio, read_split
    from tests.served_media import ffmpeg

    folder = tmp_path_factory.mktemp("video")
    rows = [r for r in read_split("test") if 8 <= len(r["sentence"]) <= 14][:3]
    speech = write_audio(joined_audio(rows, 1.5), folder / "speech.wav")
    out = folder / "lesson.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x224466:s=320x180:r=10",
                    "-i", str(speech), "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def page(app_url, video):
    """The app after transcribing `video` with CC-CEDICT glosses as the English line (offline)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Playback without a user gesture, as a test cannot give one to a muted <video> otherwise.
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1400})
        page = context.new_page()
        page.goto(app_url)
        page.get_by_label("English line").click()
        page.get_by_role("option", name="CC-CEDICT word glosses (offline)").click()
        page.get_by_role("tab", name="Upload").click()
        page.locator("#upload-file input[type=file]").set_input_files(str(video))
        page.locator("#upload-go").click()
        page.wait_for_function(FINISHED, timeout=180_000)
        page.wait_for_function(f"{MEDIA} && {MEDIA}.readyState >= 1", timeout=30_000)
        yield page
        browser.close()


def cues(page) -> list[dict]:
    return page.evaluate("window.zimuPlayer.data.cues")


def seek(page, seconds: float) -> None:
    page.evaluate(f"{MEDIA}.currentTime = {seconds}")
    page.wait_for_function(f"Math.abs({MEDIA}.currentTime - {seconds}) < 0.05 && !{MEDIA}.seeking")
    page.wait_for_timeout(150)  # the seeked event has run the player's update


def test_video_plays_with_ruby_captions_and_english(page, video):
    from tests.served_media import media_duration

    assert page.locator(".zimu-player video").count() == 1  # a video source plays as video
    assert abs(page.evaluate(f"{MEDIA}.duration") - media_duration(video)) < 0.5
    first = cues(page)[0]
    page.evaluate(f"{MEDIA}.muted = true; {MEDIA}.currentTime = {first['start']}; {MEDIA}.play()")
    page.wait_for_function(f"{MEDIA}.currentTime > {first['start'] + 0.3}", timeout=10_000)
    page.evaluate(f"{MEDIA}.pause()")
    caption = page.locator(".zimu-captions")
    hanzi = "".join(w["h"] for w in first["words"])
    assert caption.locator("ruby").count() == sum(len(w["s"]) for w in first["words"])
    assert caption.locator("rt").first.inner_text() == first["words"][0]["s"][0]  # pinyin over the first hanzi
    assert "".join(caption.locator(".cap-hanzi").inner_text().split()).startswith(hanzi[0])
    assert caption.locator(".cap-english").inner_text().strip()  # the glosses line
    colours = set(page.evaluate("window.zimuPlayer.data.colours").values())
    ruby_colour = caption.locator("ruby").first.get_attribute("style")
    assert any(c in ruby_colour for c in colours)  # tone-coloured

    # Each line can be switched off and on again.
    page.locator(".zimu-controls input[data-show=english]").uncheck()
    assert not caption.locator(".cap-english").is_visible()
    page.locator(".zimu-controls input[data-show=pinyin]").uncheck()
    assert not caption.locator("rt").first.is_visible()
    page.locator(".zimu-controls input[data-show=english]").check()
    page.locator(".zimu-controls input[data-show=pinyin]").check()
    assert caption.locator(".cap-english").is_visible() and caption.locator("rt").first.is_visible()


def test_highlighted_line_follows_playback(page):
    all_cues = cues(page)
    assert len(all_cues) >= 2
    for cue in (all_cues[1], all_cues[0], all_cues[-1]):
        seek(page, (cue["start"] + cue["end"]) / 2)
        current = page.locator("#transcript .cue.current")
        assert current.count() == 1 and current.get_attribute("data-i") == str(cue["i"])
        caption = page.locator(".zimu-captions .cap-hanzi").inner_text()
        assert all(c in caption for w in cue["words"] for c in w["h"] if w["s"])  # the line on the video


def test_the_playing_line_is_scrolled_into_view_inside_the_transcript(page):
    # A transcript box too small for every line, as a long video's is.
    page.add_style_tag(content="#transcript .zimu-transcript { max-height: 9rem !important; }")
    all_cues = cues(page)
    inside = ("(() => { const box = document.querySelector('#transcript .zimu-transcript');"
              " const cue = document.querySelector('#transcript .cue.current');"
              " const b = box.getBoundingClientRect(), c = cue.getBoundingClientRect();"
              " return c.top >= b.top - 1 && c.bottom <= b.bottom + 1; })()")
    for cue in (all_cues[0], all_cues[-1], all_cues[0]):
        seek(page, (cue["start"] + cue["end"]) / 2)
        assert page.evaluate(inside), cue["i"]
        if cue is all_cues[-1]:  # the last line is below the box's first view: scrolled to
            assert page.evaluate("document.querySelector('#transcript .zimu-transcript').scrollTop") > 0
    assert page.evaluate("document.querySelector('#transcript .zimu-transcript').scrollTop") == 0
    page.add_style_tag(content="#transcript .zimu-transcript { max-height: 26rem !important; }")


def test_clicking_a_line_seeks_to_it(page):
    cue = cues(page)[-1]
    page.locator(f"#transcript .cue[data-i='{cue['i']}'] .cue-time").click()
    page.evaluate(f"{MEDIA}.pause()")
    at = page.evaluate(f"{MEDIA}.currentTime")
    assert cue["start"] <= at < cue["end"], (at, cue)
    assert page.locator("#transcript .cue.current").get_attribute("data-i") == str(cue["i"])


def test_pause_after_each_line_and_loop(page):
    first = cues(page)[0]
    page.locator(".zimu-controls input[data-action=pause-after]").check()
    page.evaluate(f"{MEDIA}.playbackRate = 1.25")
    seek(page, max(first["end"] - 0.8, first["start"]))
    page.evaluate(f"{MEDIA}.play()")
    page.wait_for_function(f"{MEDIA}.paused", timeout=5_000)
    assert abs(page.evaluate(f"{MEDIA}.currentTime") - first["end"]) < 0.15  # stopped at the line's end
    page.evaluate(f"{MEDIA}.play()")  # play again: on into what follows, not stopped at the same end
    page.wait_for_function(f"{MEDIA}.currentTime > {first['end'] + 0.3}", timeout=5_000)
    page.evaluate(f"{MEDIA}.pause()")
    page.locator(".zimu-controls input[data-action=pause-after]").uncheck()

    seek(page, first["start"] + 0.05)
    page.locator(".zimu-controls input[data-action=loop]").check()
    page.evaluate(f"{MEDIA}.play()")
    span = first["end"] - first["start"]
    page.wait_for_timeout(int((span / 1.25 + 1.0) * 1000))  # past the line's end: it started again
    at = page.evaluate(f"{MEDIA}.currentTime")
    page.evaluate(f"{MEDIA}.pause()")
    page.locator(".zimu-controls input[data-action=loop]").uncheck()
    assert first["start"] <= at < first["end"], (at, first)
    page.locator(".zimu-controls select[data-action=rate]").select_option("0.75")
    assert page.evaluate(f"{MEDIA}.playbackRate") == 0.75


def test_hovering_a_word_shows_its_card(page):
    from app.language.pinyin import word_pinyin
    from app.study.player import hsk_level, senses

    word = page.locator("#transcript .word").nth(1)
    hanzi = word.get_attribute("data-word")
    word.hover()
    card = page.locator(".zimu-player .zimu-card")
    card.wait_for(state="visible", timeout=5_000)
    text = card.inner_text()
    reading = word_pinyin(hanzi)
    card_data = page.evaluate(f"window.zimuPlayer.data.cards[{json.dumps(hanzi)}]")
    assert hanzi in text and card_data["pinyin"] in text and card_data["pinyin"].lower() == reading.pinyin.lower()
    assert senses(reading) and senses(reading)[0] in text  # CC-CEDICT's first sense in this reading
    level = hsk_level(hanzi)
    assert (f"HSK {level if level < 7 else '7–9'}" if level else "not in HSK 3.0") in text
    assert "in this video" in text


def test_word_card_listen_plays_the_word_in_the_cards_reading(page):
    word = page.locator("#transcript .word").nth(1)
    hanzi = word.get_attribute("data-word")
    word.click()  # pins the card
    card = page.locator(".zimu-player .zimu-card")
    card.locator(".card-listen").click()
    page.wait_for_function("window.zimuPlayer.wordAudio && window.zimuPlayer.wordAudio.currentTime > 0.2",
                           timeout=120_000)
    assert card.locator(".card-listen-status").inner_text() == ""
    url = page.evaluate("window.zimuPlayer.wordAudio.src")
    seconds = page.evaluate("window.zimuPlayer.wordAudio.duration")
    assert "/gradio_api/file=" in url and seconds > 0.3, (url, seconds)
    # What was played is the card's reading, spoken by the default voice (the speech cache's file).
    from app.speech import synthesis

    card_data = page.evaluate(f"window.zimuPlayer.data.cards[{json.dumps(hanzi)}]")
    expected = synthesis.speak_word(hanzi, card_data["syllables"], card_data["tones"])
    assert url.endswith(expected.name)
    page.mouse.click(5, 5)  # unpin


def test_three_saved_words_export_as_an_anki_deck_with_their_clips(page, tmp_path):
    words = page.evaluate("Object.keys(window.zimuPlayer.data.cards)")[:3]
    assert len(words) == 3
    card = page.locator(".zimu-player .zimu-card")
    for word in words:
        page.locator(f"#transcript .word[data-word='{word}']").first.click()  # a click pins the card
        card.locator(".card-save").click()
        page.wait_for_function(f"window.zimuPlayer.saved.has({json.dumps(word)})")
    assert page.locator(".zimu-saved li").count() == 3
    page.mouse.click(5, 5)  # unpin the card
    page.locator("#export-deck").click()
    page.wait_for_function("document.querySelector('#deck-status').innerText.includes('Deck ready: 3 words')",
                           timeout=60_000)
    with page.expect_download(timeout=60_000) as info:
        page.locator("#download-apkg").click()
    apkg = tmp_path / "deck.apkg"
    info.value.save_as(apkg)
    with zipfile.ZipFile(apkg) as z:
        names = z.namelist()
        media = json.loads(z.read("media"))
        (tmp_path / "collection.anki2").write_bytes(z.read("collection.anki2"))
        clips = {name: z.read(number) for number, name in media.items()}
    with sqlite3.connect(tmp_path / "collection.anki2") as db:
        notes = [row[0].split("\x1f") for row in db.execute("select flds from notes")]
    assert sorted(n[0] for n in notes) == sorted(words), names
    for fields in notes:
        sound = next(f for f in fields if f.startswith("[sound:"))
        clip = sound[len("[sound:"):-1]
        assert clip in clips and len(clips[clip]) > 1000  # the sentence's audio is in the package
        assert fields[0] in fields[4]  # the sentence it came from holds the word
        # The word's own audio (synthesised), a file of its own beside the sentence clip.
        spoken = fields[WORD_FIELDS.index("WordAudio")]
        assert spoken.startswith("[sound:") and spoken[len("[sound:"):-1] in clips and spoken != sound
    from app.speech.audio import load_audio

    for name, blob in clips.items():
        (tmp_path / name).write_bytes(blob)
    assert all(load_audio(tmp_path / name).size > 0.3 * 16000 for name in clips)


def frame(path, seconds: float) -> np.ndarray:
    """One RGB frame at `seconds` (ffmpeg), as an array."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(seconds / stream.time_base), stream=stream, any_frame=False, backward=True)
        best = None
        for f in container.decode(stream):
            best = f
            if f.time is not None and f.time >= seconds:
                break
        return best.to_ndarray(format="rgb24").astype(np.int16)


def test_burned_in_video_shows_the_subtitles(page, video, tmp_path):
    from tests.served_media import media_duration

    page.locator("#burn").click()
    page.locator("#download-burned").wait_for(state="visible", timeout=120_000)
    with page.expect_download(timeout=60_000) as info:
        page.locator("#download-burned").click()
    burned = tmp_path / "burned.mp4"
    info.value.save_as(burned)
    assert abs(media_duration(burned) - media_duration(video)) < 0.3
    cue = cues(page)[0]
    middle = (cue["start"] + cue["end"]) / 2
    source, shown = frame(video, middle), frame(burned, middle)
    assert source.shape == shown.shape
    height = source.shape[0]
    # Pixels the subtitles changed (not re-encoding noise): many in the lower half, none at the top.
    changed = np.abs(shown - source).max(axis=2) > 48
    lower, upper = changed[height // 2:].mean(), changed[:height // 4].mean()
    assert lower > 0.02 and upper < 0.001, (lower, upper)
