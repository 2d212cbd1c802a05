"""Speech synthesis (app.speech.synthesis): the voice reads our pinyin line, and Whisper hears it back."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app.base.errors import UserError
from app.language import pinyin
from app.language.text import normalize_for_cer
from app.speech import synthesis
from tests.conftest import ROOT

ARROWS = {"→": 1, "↗": 2, "↓": 3, "↘": 4}


def tones_sent(text: str) -> list[int]:
    """The tone arrow of every toned syllable sent to the model, in order (neutral syllables carry none)."""
    return [ARROWS[c] for c in synthesis.phonemes(text) if c in ARROWS]


HARD_CASES = {
    # sentence: (syllable index, spoken tone) that a citation-tone front end gets wrong
    "他还钱了吗？": [(1, 2)],  # 还 huán (repay), not hái
    "我们还在学校。": [(2, 2)],  # 还 hái
    "我们一起去吧。": [(2, 4)],  # 一 yì before a third tone
    "这不是我的书。": [(1, 2)],  # 不 bú before a fourth tone
    "你好。": [(0, 2), (1, 3)],  # third-tone sandhi: ní hǎo as spoken
    "你好，我们走吧。": [(1, 3)],  # a comma's pause stops sandhi: hǎo stays third
    "这是展览馆。": [(2, 2), (3, 2), (4, 3)],  # a run of third tones: every one but the last rises
}


@pytest.mark.parametrize("text", sorted(HARD_CASES))
def test_phonemes_carry_the_tones_the_pinyin_line_speaks(text):
    spoken = [s.spoken_tone for s in pinyin.syllables(text)]
    for index, tone in HARD_CASES[text]:
        assert spoken[index] == tone, (text, spoken)
    # Every toned syllable's arrow, in order, is the spoken tone; neutral syllables carry none.
    assert tones_sent(text) == [t for t in spoken if t != 5]


def test_neutral_tones_are_sent_without_a_tone():
    # 妈妈 māma, 东西 dōngxi (thing), 的 de: four toned syllables of six hanzi.
    assert tones_sent("妈妈的东西") == [1, 1]
    assert synthesis.phonemes("妈妈的东西").split() == ["ma→ma", "tɤ", "tʊ→ŋɕi"]


def test_words_and_punctuation_are_kept_and_digits_are_read():
    assert synthesis.phonemes("我有3个苹果。").split()[1:3] == ["jou↓", "sa→nkɤ↘"]
    assert synthesis.phonemes("你好吗？").endswith("?")


@pytest.mark.parametrize("text, message", [("hello", "no hanzi"), ("", "no hanzi"),
                                           ("好" * (synthesis.MAX_CHARACTERS + 1), "too long")])
def test_bad_text_is_one_clear_message(text, message):
    with pytest.raises(UserError, match=message):
        synthesis.check_text(text)


def test_speed_outside_the_models_range_is_refused():
    with pytest.raises(UserError, match="outside"):
        synthesis.check_speed(3.0)


def test_a_one_syllable_word_is_spoken_in_its_carrier_in_the_cards_reading():
    carrier = synthesis.phonemes("这个字是")
    assert synthesis.word_phonemes("书") == carrier + " ʂu→."
    # 还 as the card shows it in 还钱 (huán), not as it reads alone (hái).
    assert synthesis.word_phonemes("还", ["huán"], [2]) == carrier + " xwa↗n."
    assert synthesis.word_phonemes("图书馆") == "tʰu↗ʂu→kwa↓n"
    assert synthesis.word_phonemes("展览") == "ꭧa↗nla↓n"  # sandhi inside the word, as spoken


def test_cli_bad_text_is_one_error_line_and_exit_1(tmp_path):
    result = subprocess.run([sys.executable, "-m", "app", "speak", "hello", "-o", str(tmp_path / "x.wav")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert [l for l in result.stderr.splitlines() if l.strip()] == ["error: nothing to say: the text has no hanzi"]
    assert not (tmp_path / "x.wav").exists()


def test_empty_voices_folder_says_why_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(synthesis.VOICES_ENV, str(tmp_path))
    reason = synthesis.unavailable_reason()
    assert reason is not None and "\n" not in reason and "zf_xiaobei.bin" in reason


def test_offered_voices_meet_the_measured_bar():
    table = synthesis._measured()
    offered = synthesis.offered_voices()
    assert {v.sex for v in offered} == {"female", "male"}
    assert all(v.cer is not None and v.cer <= table["threshold_cer"] for v in offered)
    assert [v for v in synthesis.all_voices() if not v.offered and v.cer is not None and v.cer <= table["threshold_cer"]] == []


@pytest.mark.model
def test_cli_speaks_what_whisper_hears_back_for_every_offered_voice(voices, model, tmp_path):
    text = "我们一起去北京吧。"
    from app.speech.audio import load_audio

    for voice in voices.offered_voices():
        out = tmp_path / f"{voice.name}.wav"
        result = subprocess.run([sys.executable, "-m", "app", "speak", text, "-o", str(out), "--voice", voice.name],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        segments, _ = model.transcribe(load_audio(out), language="zh", beam_size=5)
        heard = "".join(s.text for s in segments)
        assert normalize_for_cer(heard) == normalize_for_cer(text), (voice.name, heard)


@pytest.mark.model
def test_slow_is_the_models_speed_input_not_a_stretch(voices):
    voice = voices.default_voice()
    normal = voices.speak("我们一起去北京吧。", voice, 1.0)
    slow = voices.speak("我们一起去北京吧。", voice, voices.SLOW)
    assert normal.dtype == np.float32 and np.abs(normal).max() > 0.05
    assert 1.15 < len(slow) / len(normal) < 1.6


@pytest.mark.model
def test_what_was_spoken_is_cached(voices):
    first = voices.speak_to_file("我们是同学。")
    stamp = first.stat().st_mtime_ns
    assert voices.speak_to_file("我们是同学。") == first and first.stat().st_mtime_ns == stamp


def test_without_npm_or_the_hub_the_reason_names_both_routes(tmp_path, monkeypatch):
    """A first start with no voices yet, no npm and no Hub: one line saying why, per route."""
    import shutil

    monkeypatch.delenv(synthesis.VOICES_ENV, raising=False)
    monkeypatch.setenv("ZIMU_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UserError) as info:
        synthesis.voices_dir()
    line = str(info.value)
    assert "\n" not in line and "npm: no npm on this machine" in line and "hub:" in line


def test_timed_speech_knows_where_every_syllable_is(voices):
    """The durations output accounts for every sample, and each syllable's span holds its voice: the
    comma's pause and the lead-in before the first syllable are near silence, every syllable is not."""
    spoken = voices.speak_timed("你好，我们一起去北京吧。", voices.default_voice())
    assert [s.hanzi for s in spoken.syllables] == list("你好我们一起去北京吧")
    assert all(a < b for a, b in spoken.spans) and all(b <= c for (_, b), (c, _) in zip(spoken.spans, spoken.spans[1:]))
    assert spoken.spans[-1][1] <= len(spoken.audio) / voices.SAMPLE_RATE + 1e-6

    def loudness(start, end):
        part = spoken.audio[int(start * voices.SAMPLE_RATE):int(end * voices.SAMPLE_RATE)]
        return float(np.sqrt(np.mean(part ** 2)))

    syllables = [loudness(*span) for span in spoken.spans]
    comma = loudness(spoken.spans[1][1] + 0.01, spoken.spans[2][0] - 0.01)
    assert min(syllables) > 4 * loudness(0.0, spoken.spans[0][0] - 0.05)
    assert comma < 0.6 * np.median(syllables)  # without the 35-ms lead correction it was louder than the median


def test_timed_speech_can_say_one_tone_wrong():
    right = [s.spoken_tone for s in pinyin.syllables("我们一起去吧。")]
    wrong = right[:4] + [1] + right[5:]  # 去 qù said qū
    assert synthesis.phonemes("我们一起去吧。", wrong).count("→") == synthesis.phonemes("我们一起去吧。").count("→") + 1
    with pytest.raises(UserError):
        synthesis.phonemes("我们一起去吧。", [1, 2])
