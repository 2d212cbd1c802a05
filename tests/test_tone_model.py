"""The tone coach's parts: pinyin input, the speaker's range, the trained model's sense of tone shapes,
and the assess CLI's bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app.language.pinyin import syllables, syllables_of_pinyin
from app.practice.tone_model import Calibration, default_model, heard_tones
from app.practice.tones import PitchTrack
from tests.conftest import ROOT


@pytest.mark.parametrize("written, marked, spoken", [
    ("mā", ["mā"], [1]), ("ma1", ["mā"], [1]), ("ni3hao3", ["nǐ", "hǎo"], [2, 3]), ("nǐhǎo", ["nǐ", "hǎo"], [2, 3]),
    ("Běijīng", ["běi", "jīng"], [3, 1]), ("lv4", ["lǜ"], [4]), ("ma", ["ma"], [5])])
def test_pinyin_input_reads_as_the_pinyin_line_would(written, marked, spoken):
    got = syllables_of_pinyin(written)
    assert [s.marked for s in got] == marked and [s.spoken_tone for s in got] == spoken


def test_pinyin_input_splits_like_the_hanzi_reading():
    by_hanzi, by_pinyin = syllables("绿"), syllables_of_pinyin("lǜ")
    assert (by_hanzi[0].initial, by_hanzi[0].final) == (by_pinyin[0].initial, by_pinyin[0].final)


@pytest.mark.parametrize("bad", ["hello", "qqq1", "123"])
def test_what_is_not_pinyin_is_refused(bad):
    with pytest.raises(ValueError):
        syllables_of_pinyin(bad)


def track_of(*syllables_st: np.ndarray, gap: int = 8) -> tuple[PitchTrack, list[tuple[float, float]]]:
    """A pitch track of syllables (semitone contours at 10-ms frames) with unvoiced gaps between them."""
    values, spans, t = [np.full(gap, np.nan)], [], gap
    for contour in syllables_st:
        spans.append((t * 0.01, (t + len(contour) - 1) * 0.01))
        values += [contour, np.full(gap, np.nan)]
        t += len(contour) + gap
    semitones = np.concatenate(values)
    return PitchTrack(np.arange(semitones.size) * 0.01, semitones, 0.0, 0.0), spans


def test_the_speakers_range_is_taken_from_all_their_attempts():
    low, _ = track_of(np.full(20, 5.0))
    high, _ = track_of(np.full(20, 15.0))
    together = Calibration.of([low, high])
    assert Calibration.of([low]).centre == 5.0 and 5.0 < together.centre <= 15.0 and together.spread >= 2.0


def voiced_audio(*syllables_st: np.ndarray, gap: float = 0.08) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """16-kHz audio of syllables (semitone contours re 100 Hz at 10-ms frames): a buzz of 11 harmonics at
    that pitch, silent gaps between them, as Practice's recordings come (pitch, loudness and all)."""
    rate, parts, spans, t = 16000, [np.zeros(int(gap * 16000), np.float32)], [], gap
    for contour in syllables_st:
        hz = 100.0 * 2.0 ** (np.repeat(contour, rate // 100) / 12.0)
        phase = 2 * np.pi * np.cumsum(hz) / rate
        sound = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.hanning(hz.size) ** 0.3 * 0.2
        spans.append((t, t + hz.size / rate))
        parts += [sound.astype(np.float32), np.zeros(int(gap * rate), np.float32)]
        t += hz.size / rate + gap
    return np.concatenate(parts), spans


@pytest.mark.skipif(default_model() is None, reason="no trained tone model (python -m training.tone_model --write)")
def test_the_trained_model_tells_the_four_citation_shapes_apart():
    """A speaker around 12 st (a range of ±4), shapes as in connected speech after a syllable a little above
    the middle (14 st), before one at the middle: level high, rising, low (the half third: at the bottom
    of the range, falling a little, no rise), falling from high; rendered as sound and heard through the
    pitch tracker, as Practice hears them. (The model trained on 600 clips hears a third tone that starts
    higher, 8.5 -> 6.5 st, as 1st 0.38 / 3rd 0.33: a low level stretch is close to a sentence-final 1st.)"""
    from app.practice.tones import pitch_track

    n = np.linspace(0, 1, 25)
    shapes = {1: 16.0 + 0 * n, 2: 10.0 + 6.0 * n ** 1.5, 3: 8.0 - 2.0 * n, 4: 17.0 - 9.0 * n}
    heard = []
    for tone, contour in shapes.items():
        audio, spans = voiced_audio(np.full(25, 14.0), contour, np.full(25, 12.0))
        heard.append(heard_tones(pitch_track(audio), spans, Calibration(12.0, 4.0), audio)[1].tone)
    assert heard == [1, 2, 3, 4]


@pytest.mark.parametrize("args, message", [
    ([], "give AUDIO"),
    (["nothing.wav", "--pinyin", "mā"], "no such file"),
    (["--list", "missing.tsv"], "cannot read"),
])
def test_assess_cli_bad_input_is_one_error_line_and_exit_1(tmp_path, args, message):
    done = subprocess.run([sys.executable, "-m", "app", "assess", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1 and done.stderr.startswith("error:") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_zh_synth_clips_join_the_training_speech_timed_by_alignment(voices, zh_synth, tmp_path):
    """`--zh-synth-clips`: zh-synth's own voice as a train voice; each syllable gets a span inside the
    clip, in order, and the trainer featurises it in its sentence and once more as if said alone."""
    from app.speech.audio import SAMPLE_RATE, load_audio
    from training.tone_corpus import read, write_zh_synth
    from training.tone_model import corpus_examples

    (tmp_path / "clips").mkdir()
    assert write_zh_synth(tmp_path, zh_synth, 2) == 2
    assert write_zh_synth(tmp_path, zh_synth, 2) == 2  # resumable: nothing written twice
    rows = read(tmp_path, "train")
    for row in rows:
        assert row["voice"] == "zh-synth" and len(row["spans"]) == len(row["pinyin"]) == len(syllables(row["sentence"]))
        seconds = load_audio(tmp_path / "clips" / row["path"]).size / SAMPLE_RATE
        starts = [s[0] for s in row["spans"] if s]
        assert len(starts) >= len(row["spans"]) - 1 and starts == sorted(starts)
        assert all(0 <= s[0] < s[1] <= seconds + 0.01 for s in row["spans"] if s)
    examples = corpus_examples(tmp_path, "train", alone=True)
    alone = examples["alone"]
    assert alone.sum() == (~alone).sum() > 0
    assert (examples["x"][alone][:, -1] == 0).all() and (examples["x"][alone][:, -4] == 0).all()  # no neighbours
