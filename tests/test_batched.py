"""The batched decoding path on real zh-synth speech with the embedded model: the same text as
plain BatchedInferencePipeline, repeatable subtitles, guards, Whisper's English, results while decoding."""

from __future__ import annotations

import numpy as np
import pytest

from app.speech.audio import SAMPLE_RATE
from app.speech.batched import Chunk, decode_batched, pack_regions
from app.base.errors import UserError
from app.speech.guards import strip_known_hallucinations
from app.jobs import export, run_job
from app.language.subtitles import Word
from app.language.text import has_cjk
from app.speech.transcribe import TranscribeOptions, iter_transcribe, transcribe
from tests.conftest import joined_audio, read_split
from tests.test_guards import signal


@pytest.fixture(scope="module")
def long_audio(zh_synth) -> tuple[np.ndarray, list[dict]]:
    """About 45 s of speech: two windows of the batched path."""
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 6][:20]
    return joined_audio(rows, 0.6), rows


def test_regions_pack_into_windows_like_collect_chunks():
    from faster_whisper.vad import collect_chunks

    second = SAMPLE_RATE
    regions = [{"start": a * second, "end": b * second} for a, b in ((0, 12), (13, 25), (26, 31), (40, 70), (71, 72))]
    audio = np.zeros(80 * second, dtype=np.float32)
    _, stock = collect_chunks(audio, regions, max_duration=30)
    ours = pack_regions(regions, 30)
    # Decoding reads only offset and duration (faster-whisper 1.2's own "segments" list leaves out the
    # first region of every window after the first; the timeline is restored from all regions).
    assert [(c.offset, c.duration) for c in ours] == [(m["offset"], m["duration"]) for m in stock]
    assert [r for c in ours for r in c.regions] == regions
    assert all(isinstance(c, Chunk) and c.audio(audio).size == round(c.duration * second) for c in ours)


def test_same_segments_as_plain_batched_pipeline(model, long_audio, monkeypatch):
    """Our windows decode as the stock pipeline's with timestamp tokens; the second pass over speech
    a window's words leave uncovered only adds to that (switched off here to compare)."""
    from faster_whisper import BatchedInferencePipeline

    import app.speech.batched as batched

    audio, _ = long_audio
    stock, _ = BatchedInferencePipeline(model).transcribe(audio, language="zh", beam_size=5, batch_size=8,
                                                          word_timestamps=True, without_timestamps=False)
    stock = list(stock)
    monkeypatch.setattr(batched, "REDECODE_DEPTH", 0)
    _, batches = decode_batched(model, audio, language="zh", beam_size=5, batch_size=8)
    ours = [s for b in batches for s in b.segments]
    assert len(ours) > 2  # sentences, not one segment per window
    assert [(s.text, s.start, s.end) for s in ours] == [(s.text, s.start, s.end) for s in stock]
    assert [(w.word, w.start) for s in ours for w in s.words] == [(w.word, w.start) for s in stock for w in s.words]


def test_same_file_twice_gives_the_same_subtitles(model, long_audio, tmp_path):
    import soundfile

    audio, _ = long_audio
    path = tmp_path / "lesson.wav"
    soundfile.write(path, audio, SAMPLE_RATE)
    srts = []
    for run in range(2):
        job = run_job(str(path), model, TranscribeOptions(english="none"), max_duration=3600)
        assert job.transcript.decoder == "batched"
        srts.append(export(job.transcript, tmp_path / str(run), "lesson", ["srt"])["srt"].read_bytes())
    assert srts[0] == srts[1] and srts[0].count(b"-->") >= 10


@pytest.mark.parametrize("kind", ["silence", "white noise", "music-like tone"])
def test_no_text_from_long_non_speech_in_batched_mode(model, kind):
    audio = signal(kind, seconds=40.0)
    with pytest.raises(UserError, match="no speech found"):
        transcribe(audio, model, TranscribeOptions(english="none"))


def test_known_caption_cut_out_of_a_window_speech_kept():
    words = [Word("我们", 0.0, 0.4), Word("明天", 0.4, 0.8), Word("去", 0.8, 1.0), Word("。", 1.0, 1.0),
             Word("字幕", 1.6, 1.9), Word("由", 1.9, 2.0), Word("Amara.org", 2.0, 2.6), Word("社群", 2.6, 2.9),
             Word("提供", 2.9, 3.2)]
    assert [w.text for w in strip_known_hallucinations(words)] == ["我们", "明天", "去", "。"]
    assert strip_known_hallucinations(words[:4]) == words[:4]


def test_whisper_english_on_every_cue_and_never_chinese(model, long_audio):
    audio, _ = long_audio
    transcript = transcribe(audio, model, TranscribeOptions(english="whisper"))
    assert transcript.decoder == "batched"
    for cue in transcript.cues:
        assert cue.english.strip(), cue.hanzi
        assert not has_cjk(cue.english), (cue.hanzi, cue.english)


def test_first_cues_arrive_before_the_end(model, long_audio):
    audio, _ = long_audio
    options = TranscribeOptions(english="none", batch_size=2)  # 2 windows per batch: two batches here
    seen = list(iter_transcribe(np.concatenate([audio, audio]), model, options))
    partial = [t for t in seen if not t.complete]
    assert len(partial) >= 2 and seen[-1].complete
    assert 0 < len(partial[0].cues) < len(seen[-1].cues)
    # Windows are never merged: what was shown early stays as it was.
    assert [c.hanzi for c in partial[0].cues] == [c.hanzi for c in seen[-1].cues[:len(partial[0].cues)]]
    # Each batch's cues are appended to what was shown: by the last batch, all the text is there.
    assert "".join(c.hanzi for c in partial[-1].cues) == seen[-1].text
