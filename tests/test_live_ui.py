"""The Live mode's pieces that need no browser: the live-session limit, the captions' HTML, the
microphone resampler (the whole path runs in tests/test_browser.py)."""

from __future__ import annotations

import numpy as np

from app.base.limits import LiveSlots
from app.speech.audio import SAMPLE_RATE, StreamResampler
from app.ui_live import live_html


def test_one_live_session_more_than_the_limit_is_refused_with_a_line_saying_so():
    now = [0.0]
    slots = LiveSlots(limit=1, idle=30.0, clock=lambda: now[0])
    assert slots.acquire("a") is None
    refusal = slots.acquire("b")
    assert refusal is not None and "1 live session at once" in refusal and "Transcribe recording" in refusal
    assert slots.acquire("a") is None  # the holder itself may start again
    assert slots.touch("a") and not slots.touch("b")
    slots.release("a")
    assert slots.acquire("b") is None and slots.held() == 1


def test_a_session_silent_past_the_idle_time_gives_its_place_up():
    now = [0.0]
    slots = LiveSlots(limit=1, idle=30.0, clock=lambda: now[0])
    assert slots.acquire("closed-tab") is None
    now[0] = 20.0
    assert slots.acquire("next") is not None
    now[0] = 31.0
    assert slots.acquire("next") is None
    assert not slots.touch("closed-tab")


def test_captions_show_tone_coloured_pinyin_english_for_finished_sentences_and_grey_tentative_text():
    cache: dict[str, str] = {}
    page = live_html("我们去北京。你", "呢", "cedict", cache)
    assert page.count('class="cue"') == 2
    first, second = page.split('class="cue"')[1:]
    assert "北<rt>Běi</rt>" in first and 'class="tone3" style="color:#43a047">北' in first  # běi, third tone
    assert 'class="english"' in first and "Beijing" in first  # CC-CEDICT glosses offline
    assert 'class="english"' not in second  # the open sentence has no English yet
    assert 'class="zimu-tentative"' in second and "呢" in second.split('zimu-tentative')[1]
    assert "我们去北京。" in cache  # a finished sentence is rendered once


def test_microphone_chunks_are_resampled_to_16_khz_mono_across_chunk_joins():
    rate = 48000
    t = np.arange(rate) / rate
    stereo = (np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1) * 12000).astype(np.int16)
    resample = StreamResampler()
    out = np.concatenate([resample(rate, stereo[i:i + 4800]) for i in range(0, rate, 4800)])
    assert out.dtype == np.float32 and abs(out.size - SAMPLE_RATE) <= 64
    assert 0.3 < float(np.abs(out[1000:-1000]).max()) < 0.4  # 12000 / 32768
