"""Hallucination guards: no text from silence, noise or music; loops collapsed; silence captions dropped."""

from __future__ import annotations

import numpy as np
import pytest

from app.speech.audio import SAMPLE_RATE
from app.base.errors import UserError
from app.speech.guards import collapse_repeats, is_known_hallucination
from app.language.subtitles import Word
from app.speech.transcribe import TranscribeOptions, transcribe


def words(*texts: str) -> list[Word]:
    return [Word(t, i * 0.2, i * 0.2 + 0.2) for i, t in enumerate(texts)]


def test_character_and_phrase_loops_collapse():
    out = collapse_repeats(words("他家", "在", "西北", "GGGGGGGGG"))
    assert [w.text for w in out] == ["他家", "在", "西北", "G"]
    loop = words("我", "经常", "做", "地铁", "我", "经常", "做", "地铁", "我", "经常", "做", "地铁")
    out = collapse_repeats(loop)
    assert [w.text for w in out] == ["我", "经常", "做", "地铁"]
    assert out[-1].end == loop[-1].end


def test_ordinary_reduplication_stays():
    for text in (["看看"], ["哈", "哈", "哈"], ["谢谢", "谢谢"], ["好", "好", "学习"]):
        assert [w.text for w in collapse_repeats(words(*text))] == text


def test_known_silence_captions():
    assert is_known_hallucination("字幕由Amara.org社群提供")
    assert is_known_hallucination("請不吝點贊 訂閱 轉發 打賞支持明鏡與點點欄目")
    assert not is_known_hallucination("我们明天去北京")


def signal(kind: str, seconds: float = 8.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    if kind == "silence":
        return np.zeros_like(t, dtype=np.float32)
    if kind == "white noise":
        return (0.1 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    # music-like: a C-major chord pulsing twice a second
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0)) / 3
    return (0.3 * chord * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)


@pytest.mark.parametrize("kind", ["silence", "white noise", "music-like tone"])
@pytest.mark.parametrize("vad", [True, False])
def test_no_text_from_non_speech(model, kind, vad):
    with pytest.raises(UserError, match="no speech found"):
        transcribe(signal(kind), model, TranscribeOptions(english="none", vad=vad))
