"""Pronunciation practice: syllable alignment, sandhi, scoring on real zh-synth speech, pitch tones."""

from __future__ import annotations

import numpy as np
import pytest

from app.speech.audio import load_audio
from app.language.pinyin import syllables
from app.practice.assess import EXTRA, FINAL, INITIAL, MISSING, RIGHT, TONE, assess, compare, score
from tests.conftest import clip_path, read_split


def statuses(target: str, said: str) -> list[tuple[str, str]]:
    return [((r.target or r.said).hanzi, r.status) for r in compare(target, said)]


def test_missing_syllable():
    assert statuses("我要洗手", "我洗手") == [("我", RIGHT), ("要", MISSING), ("洗", RIGHT), ("手", RIGHT)]


def test_wrong_tone_and_homophones():
    # 网 wǎng heard as 王 wáng: only the tone is wrong; 她/他 are the same syllable tā.
    assert statuses("她上网", "他上王") == [("她", RIGHT), ("上", RIGHT), ("网", TONE)]


def test_wrong_initial_and_final():
    assert statuses("常常", "成长")[0] == ("常", FINAL)  # cháng → chéng
    assert statuses("不", "木") == [("不", INITIAL)]  # bù → mù


def test_extra_syllable_costs_half():
    results = compare("你好", "你好吗")
    assert [r.status for r in results] == [RIGHT, RIGHT, EXTRA]
    assert score(results) == 75


def test_sandhi_expected_tones():
    assert [s.spoken_tone for s in syllables("你好")] == [2, 3]
    assert [s.spoken_tone for s in syllables("展览馆")] == [2, 2, 3]
    assert [s.spoken_tone for s in syllables("不对")] == [2, 4]
    assert [s.spoken_tone for s in syllables("一天")] == [4, 1]
    assert [s.spoken_tone for s in syllables("第一")] == [4, 1]


def test_practice_speaks_what_the_pinyin_line_writes():
    """The expected tones are the subtitle line's (一/不 changed, neutral tones), plus 3-3 sandhi."""
    assert [(s.marked, s.spoken_tone) for s in syllables("我们一起买东西")] == [
        ("wǒ", 3), ("men", 5), ("yì", 4), ("qǐ", 2), ("mǎi", 3), ("dōng", 1), ("xi", 5)]
    assert [(s.marked, s.spoken_tone) for s in syllables("看一看")] == [("kàn", 4), ("yi", 5), ("kàn", 4)]


def test_yi_and_bu_judged_alike_whatever_follows():
    # 不 is written bú before 对 and bù alone; both are the syllable bù, so a dropped 对 is only missing.
    assert statuses("不对", "不") == [("不", RIGHT), ("对", MISSING)]


@pytest.mark.slow
def test_matching_sentence_scores_high_and_another_scores_low(model, zh_synth):
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 8][:6]
    matching, different = [], []
    for row, other in zip(rows, rows[1:] + rows[:1]):
        audio = load_audio(clip_path(row))
        matching.append(assess(audio, row["sentence"], model).score)
        different.append(assess(audio, other["sentence"], model).score)
    # Recognition of synthetic speech is not perfect (CER ~5 %), and tones are now judged from the voice
    # (zh-synth's voice is not one the tone model trained on; about 5 % false alarms on held-out voices,
    # more with the recogniser's spans), so the bar is on most clips and on the mean.
    assert sorted(matching)[1] >= 70 and np.mean(matching) >= 80, matching
    assert max(different) <= 30, different


@pytest.mark.slow
def test_pitch_tone_classifier_beats_chance(model, zh_synth):
    """The figure and confusion matrix for the whole test split are in the README
    (python -m app.evaluation.tones); here a 30-clip sample must stay well above chance (25 %)."""
    from pathlib import Path

    from app.evaluation.tones import collect, report

    expected, heard, used = collect(Path(zh_synth), read_split("test")[:30], model)
    result = report(expected, heard)
    assert used >= 15
    assert result["accuracy_4"] >= 0.35, result


def test_sandhi_stops_at_a_comma():
    spoken = [s.spoken_tone for s in syllables("你好，我很好。")]
    assert spoken == [2, 3, 2, 2, 3]  # ní hǎo, wó hén hǎo: the pause after 好 keeps it third


def test_pitch_plot_lays_the_native_reading_over_the_learners_attempt(model, voices, zh_synth):
    import numpy as np

    from app.practice.assess import pitch_frame

    row = next(r for r in read_split("test") if 8 <= len(r["sentence"]) <= 12)
    attempt = load_audio(clip_path(row))
    result = assess(attempt, row["sentence"], model)
    native = load_audio(voices.speak_to_file(row["sentence"], voices.default_voice("male")))
    frame = pitch_frame(result, native)
    mine, theirs = frame[frame.series == "your pitch"], frame[frame.series == "native reading"]
    assert len(theirs) > 20 and len(mine) > 10
    # On the learner's time axis, from the first to the last voiced frame, and at the learner's pitch
    # (a male voice shifted up to a female learner's median): shapes compare, registers don't matter.
    voiced = result.pitch.times[~np.isnan(result.pitch.semitones)]
    assert abs(theirs.time.min() - voiced[0]) < 0.02 and abs(theirs.time.max() - voiced[-1]) < 0.02
    assert abs(theirs.semitones.median() - np.nanmedian(result.pitch.semitones)) < 0.5
    assert "native reading" not in set(pitch_frame(result).series)


def test_a_prepared_native_reading_is_made_once_in_the_background_and_waited_for(voices):
    """Practice starts the reading when a sentence is chosen; Check then finds it made, not made again."""
    from app.practice.assess import prepare_reference, reference_reading

    text, voice = "我想喝一杯茶。", voices.default_voice("female")
    started = prepare_reference(text, voice)
    assert prepare_reference(text, voice) is started  # a second choice of the same sentence adds no work
    reading = reference_reading(text, voice)
    assert reading is started.result()
    assert len(reading.spans) == len(syllables(text)) and all(span is not None for span in reading.spans)
    assert reference_reading("123", voice) is None  # no syllables to time: Check falls back to the recogniser
