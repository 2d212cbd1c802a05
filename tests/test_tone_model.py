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
    pitch tracker, as Practice hears them. (The model of 600 clips and the citation syllables hears a third
    tone that starts higher, 8.5 -> 6.5 st, as 1st 0.58 / 3rd 0.37: a low level stretch is close to a
    sentence-final 1st.)"""
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


@pytest.mark.parametrize("tone", [1, 2, 3, 4])
def test_a_citation_tone_is_given_to_a_syllable_and_heard_back(tone):
    """training.citation_syllables: PSOLA puts a drawn citation contour on a voiced syllable, and the
    pitch tracker hears that contour in the result (a flat 120-Hz buzz as the source)."""
    import random

    from app.practice.tones import pitch_track, voiced_span
    from training.citation_syllables import Speaker, said

    source, spans = voiced_audio(np.full(30, 3.2))
    speaker = Speaker("test-c0", "m", bottom=0.0, span=10.0, tempo=1.2, loudness=0.4)
    audio = said(source, spans[0], speaker, tone, random.Random(tone))
    track = pitch_track(audio)
    start, end = voiced_span(track)
    st = track.semitones[(track.times >= start) & (track.times <= end)]
    st = st[~np.isnan(st)]
    first, middle, last = np.median(st[:4]), np.min(st[len(st) // 4: 3 * len(st) // 4]), np.median(st[-4:])
    assert 0.25 < end - start < 1.0  # stretched to a syllable said alone, not the 0.3-s source
    if tone == 1:
        assert first > 6.5 and abs(last - first) < 3
    elif tone == 2:
        assert last - first > 2
    elif tone == 3:
        assert middle < first - 1 and middle < 3
    else:
        assert first - last > 4


def test_citation_syllables_are_written_as_a_chart_of_each_speaker(voices, zh_synth, tmp_path):
    """Every chosen syllable in all four tones for each drawn speaker, in tone_syllables' layout; a rerun
    writes nothing twice; the trainer reads the dev voice's speakers."""
    import csv

    from training.citation_syllables import write
    from training.tone_model import citation_examples

    assert write(tmp_path, zh_synth, per_voice=2, speakers=1, splits=("dev",)) == 8
    assert write(tmp_path, zh_synth, per_voice=2, speakers=1, splits=("dev",)) == 8
    with open(tmp_path / "syllables.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert sorted(int(r["tone"]) for r in rows) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert {r["speaker"] for r in rows} == {"zm_yunjian-c0"} and all((tmp_path / r["path"]).is_file() for r in rows)
    examples = citation_examples(tmp_path, "dev")
    assert len(examples["said"]) == 8 and (examples["x"][:, -1] == 0).all()  # said alone: no neighbours


def test_an_ensemble_is_one_network_whose_logits_are_the_members_mean():
    """training.tone_model --ensemble: networks from several seeds saved as one (the app's loader
    unchanged); its probabilities are the softmax of the members' mean logits."""
    from training.tone_model import ensemble, fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y = np.array([1, 2, 3, 4, 5])[(x[:, 0] > 0) + 2 * (x[:, 1] > 0) + (x[:, 2] > 1.5)]
    members = [fit(x, y, (8,), seed=s) for s in range(3)]
    merged = ensemble(members)

    def logits(m, features):
        h = np.maximum((features - m.mean) / m.scale @ m.weights[0] + m.biases[0], 0.0)
        return h @ m.weights[1] + m.biases[1]

    mean = sum(logits(m, x[:20]) for m in members) / 3
    expected = np.exp(mean - mean.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert merged.weights[0].shape[1] == 24
    assert np.allclose(merged.probabilities(x[:20]), expected)
