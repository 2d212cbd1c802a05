"""The pipeline on real zh-synth speech with the embedded model (no mocks)."""

from __future__ import annotations

import pysubs2
import pytest

from app.speech.audio import SAMPLE_RATE, load_audio
from app.language.subtitles import write_subtitles
from app.language.text import cer, traditional_only_chars
from app.speech.transcribe import TranscribeOptions, transcribe
from tests.conftest import clip_path, free_port, joined_audio, read_split

N_CLIPS = 60  # ~1.8 minutes of speech; the full 500-clip figure is in the README (training.evaluate)


@pytest.mark.slow
def test_cer_on_zh_synth_test_and_simplified_only(model, zh_synth):
    rows = read_split("test")[:N_CLIPS]
    refs, hyps = [], []
    for row in rows:
        transcript = transcribe(load_audio(clip_path(row)), model, TranscribeOptions(english="none"))
        refs.append(row["sentence"])
        hyps.append(transcript.text)
    score = cer(refs, hyps)
    assert score <= 0.15, f"CER {score:.2%}"
    leftovers = [c for h in hyps for c in traditional_only_chars(h)]
    assert leftovers == []


def test_sentences_become_cues_with_pinyin_and_monotonic_srt(model, zh_synth, tmp_path):
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 7][:5]
    audio = joined_audio(rows, 1.5)
    transcript = transcribe(audio, model, TranscribeOptions(english="cedict"))
    assert len(transcript.cues) == len(rows)
    for cue in transcript.cues:
        assert cue.pinyin and cue.english
        assert not traditional_only_chars(cue.hanzi)
    path = write_subtitles(transcript.cues, tmp_path / "five.srt", ["hanzi", "pinyin", "english"])
    subs = pysubs2.load(str(path), encoding="utf-8")
    assert len(subs) == len(rows)
    for a, b in zip(subs, subs[1:]):
        assert a.start < a.end <= b.start < b.end
    assert subs[-1].end <= audio.size / SAMPLE_RATE * 1000 + 1500


def test_whisper_translate_gives_english(model, zh_synth):
    row = next(r for r in read_split("test") if r["path"].startswith("hsk1"))
    transcript = transcribe(load_audio(clip_path(row)), model, TranscribeOptions(english="whisper"))
    english = " ".join(c.english for c in transcript.cues)
    assert english and all(ord(c) < 0x3000 for c in english), english


def test_google_unreachable_fails_over_to_whisper(model, zh_synth, monkeypatch):
    """Google unreachable (its probe sent to a closed loopback port, so this holds online too): one
    warning line, Whisper's English on every cue, hanzi and pinyin still there."""
    import app.language.translate

    monkeypatch.setattr(app.language.translate, "GOOGLE_HOST", ("127.0.0.1", free_port()))
    row = read_split("test")[0]
    transcript = transcribe(load_audio(clip_path(row)), model, TranscribeOptions(english="google"))
    assert transcript.english_source == "whisper"
    assert len(transcript.warnings) == 1 and "Google Translate is unreachable" in transcript.warnings[0]
    assert transcript.cues and transcript.cues[0].hanzi and transcript.cues[0].pinyin
    assert all(c.english.strip() and all(ord(ch) < 0x3000 for ch in c.english) for c in transcript.cues)
