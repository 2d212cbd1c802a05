"""Speech synthesis (app.speech.synthesis): the voice reads our pinyin line, and Whisper hears it back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

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


# sha256 of the eight voice files in the npm tarball kokoro-js@1.2.1 (the one NPM_INTEGRITY pins).
NPM_VOICE_SHA256 = {
    "zf_xiaobei": "5dde6e1c9c4f12c8b327bc29c0cee361a23b52b952c04636858ba637ec66e640",
    "zf_xiaoni": "08892b62a39af0a615cd0581238db7e19e44c578e8fa0bfd0e586e93327d9cba",
    "zf_xiaoxiao": "03adb5d5e3ddd88b047954e974e651cb0a4b524c985057e5d872e962c7be1169",
    "zf_xiaoyi": "bc1555c5c486099196ac254bae5e0bb543c121952a3092f50b7d8724f1bc36b3",
    "zm_yunjian": "de48a00bdbf3649f07162269a2b6e0513604389bfac8a2e6c75cb34b323ad6fa",
    "zm_yunxi": "7243892fb4e560d47014090ddf010f8b8b790f3c6b029ff82b2ac06aa4e27c8b",
    "zm_yunxia": "6b2b8fc15b3df19a368daebe5c581c7fabf433ee5b8a17ffd6b3d723cff8936d",
    "zm_yunyang": "261e2c89470534dbbcb8fd98b8fdc495ec94063d9bb6c8277f7be43cccba3f42",
}


def first_start(tmp_path, script: str, **hub_env) -> subprocess.CompletedProcess:
    """`script` in a fresh process as a first start on a Space has it: no npm on PATH, an empty
    ZIMU_CACHE (unless the test put something there), a fresh HF_HOME, no Hub setting but `hub_env`.
    huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, at import: hence a process of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_")) and k not in ("TRANSFORMERS_OFFLINE", synthesis.VOICES_ENV)}
    (tmp_path / "bin").mkdir(exist_ok=True)  # PATH holds nothing: no npm
    env.update(PATH=str(tmp_path / "bin"), ZIMU_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"), **hub_env)
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


VOICES_DIR = """
from app.base.errors import UserError
from app.speech import synthesis
try:
    print(synthesis.voices_dir())
except UserError as exc:
    print(exc)
"""


@pytest.mark.parametrize("hub", ["offline", "unreachable"])
def test_without_npm_or_the_hub_the_reason_names_both_routes(tmp_path, hub):
    """A first start with no voices yet, no npm and no Hub (HF_HUB_OFFLINE=1, or a Hub nobody answers:
    a closed port, as a machine without network has it): one short line saying why, per route, at once
    (not after huggingface_hub's ~25 s of retries and their warnings)."""
    from tests.served_media import closed_port_url

    endpoint = closed_port_url("").rstrip("/")
    started = time.monotonic()
    done = first_start(tmp_path, VOICES_DIR, **({"HF_HUB_OFFLINE": "1"} if hub == "offline" else {"HF_ENDPOINT": endpoint}))
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("the Mandarin voices could not be fetched (npm: no npm on this machine; hub: "), line
    assert line.endswith("hub: HF_HUB_OFFLINE is set and the Hub cache does not hold them)" if hub == "offline"
                         else f"hub: cannot reach {endpoint} ([Errno 111] Connection refused))"), line
    assert "Retrying" not in done.stderr and seconds < 15, (seconds, done.stderr)
    assert not list((tmp_path / "cache").glob("kokoro-voices/*.bin"))


def test_a_space_like_first_start_gets_the_voices_from_the_hub(voices, tmp_path):
    """The Hub route, end to end: no npm, a fresh cache, HF_ENDPOINT at a local server that speaks the
    Hub's resolve protocol (tests/hub_server.py; a local imitation, not the Hub) serving npm's voice
    bytes. huggingface_hub's real hf_hub_download fetches them; the app installs all eight, byte for
    byte, and speaks with one. A later start with the Hub gone finds them in the Hub cache."""
    import hashlib

    from tests.hub_server import HubServer

    served = {n: (voices.voices_dir() / f"{n}.bin").read_bytes() for n in voices.VOICE_NAMES}
    assert {n: hashlib.sha256(b).hexdigest() for n, b in served.items()} == NPM_VOICE_SHA256
    cache = tmp_path / "cache"
    cache.mkdir()
    for model in (voices.model_path(), voices.timed_model_path()):  # the model is not what is tested here
        (cache / model.name).symlink_to(model)
    speak = """
import json
from app.speech import synthesis
reason = synthesis.unavailable_reason()
spoken = None if reason else synthesis.speak_timed("你好。", synthesis.default_voice())
print(json.dumps({"reason": reason, "folder": str(synthesis.voices_dir()),
                  "seconds": spoken and len(spoken.audio) / synthesis.SAMPLE_RATE,
                  "peak": spoken and float(abs(spoken.audio).max()),
                  "hanzi": spoken and [s.hanzi for s in spoken.syllables]}))
"""
    with HubServer(voices.HUB_REPO, {f"voices/{n}.bin": b for n, b in served.items()}) as hub:
        done = first_start(tmp_path, speak, HF_ENDPOINT=hub.endpoint)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["reason"] is None and result["folder"] == str(cache / "kokoro-voices")
    assert result["hanzi"] == ["你", "好"] and result["seconds"] > 0.3 and result["peak"] > 0.05, result
    for name, blob in served.items():
        assert (cache / "kokoro-voices" / f"{name}.bin").read_bytes() == blob, name
    # What the client did: a HEAD of each file's resolve URL at main, then a GET of its blob on the
    # "CDN" port (no Xet: the server sent no Xet headers), and huggingface_hub's user-agent registry.
    hub_port, cdn_port = hub.hub.server_address[1], hub.cdn.server_address[1]
    resolve = {f"/{voices.HUB_REPO}/resolve/main/voices/{n}.bin" for n in voices.VOICE_NAMES}
    assert {p for m, port, p in hub.requests if (m, port) == ("HEAD", hub_port)} == resolve
    assert sorted(p for m, port, p in hub.requests if port == cdn_port) == sorted(
        f"/blobs/{d}" for d in NPM_VOICE_SHA256.values())
    assert {p for m, port, p in hub.requests if port == hub_port} <= resolve | {"/api/agent-harnesses"}

    shutil.rmtree(cache / "kokoro-voices")  # the Hub gone (its port closed), its cache kept
    again = first_start(tmp_path, VOICES_DIR, HF_ENDPOINT=hub.endpoint)
    assert again.returncode == 0 and again.stdout.splitlines() == [str(cache / "kokoro-voices")], again
    assert all((cache / "kokoro-voices" / f"{n}.bin").read_bytes() == b for n, b in served.items())


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
