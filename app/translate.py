"""The English line of each cue, from one of three sources:

* ``whisper``: Whisper's own translate task on the cue's audio (offline, the same model);
* ``google``: Google Translate through deep-translator (online; unreachable → one warning, no English);
* ``cedict``: CC-CEDICT glosses of each jieba word (offline, word by word, good for study).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from app.audio import SAMPLE_RATE
from app.subtitles import Cue

ENGLISH_SOURCES = {
    "whisper": "Whisper translation (offline)",
    "google": "Google Translate (online)",
    "cedict": "CC-CEDICT word glosses (offline)",
    "none": "No English",
}


def translate_cues(cues: list[Cue], source: str, *, audio: np.ndarray | None = None, model=None,
                   language: str | None = "zh", beam_size: int = 5) -> list[str]:
    """Fill `cue.english` in place; return warnings for the user (never raises for network trouble)."""
    if source == "none" or not cues:
        return []
    if source == "whisper":
        if audio is None or model is None:
            raise ValueError("whisper translation needs the audio and the model")
        for cue in cues:
            cue.english = whisper_translate(model, audio, cue.start, cue.end, language, beam_size)
        return []
    if source == "google":
        return google_translate(cues, language)
    if source == "cedict":
        for cue in cues:
            cue.english = cedict_gloss([w.text for w in cue.words])
        return []
    raise ValueError(f"unknown English source {source!r}; choose from {', '.join(ENGLISH_SOURCES)}")


def whisper_translate(model, audio: np.ndarray, start: float, end: float, language: str | None, beam_size: int) -> str:
    a = max(0, int((start - 0.15) * SAMPLE_RATE))
    b = min(audio.size, int((end + 0.15) * SAMPLE_RATE))
    segments, _ = model.transcribe(
        audio[a:b], language=language, task="translate", beam_size=beam_size,
        vad_filter=False, without_timestamps=True, condition_on_previous_text=False,
    )
    return " ".join(s.text.strip() for s in segments).strip()


def google_translate(cues: list[Cue], language: str | None) -> list[str]:
    from deep_translator import GoogleTranslator

    source = {"zh": "zh-CN", None: "auto"}.get(language, language)
    try:
        translator = GoogleTranslator(source=source, target="en")
        texts = [cue.hanzi for cue in cues]
        # One request per ~4,500 characters keeps under the service's 5,000-character limit.
        results: list[str] = []
        batch: list[str] = []
        for text in texts + [None]:
            if text is None or sum(len(t) + 1 for t in batch) + len(text) > 4500:
                if batch:
                    results.extend(translator.translate("\n".join(batch)).split("\n"))
                    batch = []
            if text is not None:
                batch.append(text)
    except Exception as exc:  # no network, rate limit, service change: keep the rest of the result
        reason = type(exc).__name__
        return [f"Google Translate is unreachable ({reason}): English left empty; choose Whisper or CC-CEDICT for offline English."]
    if len(results) != len(cues):
        return ["Google Translate returned a different number of lines; English left empty."]
    for cue, english in zip(cues, results):
        cue.english = english.strip()
    return []


@functools.lru_cache(maxsize=1)
def _cedict_index() -> dict[str, list[dict]]:
    """Simplified headword → every CC-CEDICT entry for it: the one index app.cedict builds, shared
    with the pinyin (the dictionary is parsed once per process)."""
    from app.cedict import entries_by_word

    return entries_by_word()


_SKIP_GLOSS = re.compile(r"^(CL:|(unofficial |old |archaic )?variant of|see |used in |surname |abbr\. for )")


def gloss(word: str) -> str | None:
    """A short CC-CEDICT definition, from the entry whose reading matches the word's pinyin."""
    from pypinyin import Style, lazy_pinyin

    entries = _cedict_index().get(word, [])
    reading = " ".join(lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)).lower()
    entries = sorted(entries, key=lambda e: e["pinyin"].lower().replace("u:", "v") != reading)
    for entry in entries:
        for definition in entry["definitions"]:
            if not _SKIP_GLOSS.match(definition):
                short = re.sub(r"\s*\(.*?\)\s*", " ", definition).strip(" ;,")
                if len(short) > 30:  # "Chongqing city , formerly in Sichuan province, ..." → "Chongqing city"
                    short = short.split(",")[0].strip()
                return short or definition
    return None


def cedict_gloss(words: list[str]) -> str:
    """'我 在 银行 工作' → 'I · at · bank · to work' (unknown words split into characters)."""
    from app.text import has_cjk

    parts = []
    for word in words:
        if not has_cjk(word):
            continue
        found = gloss(word)
        if found is None and len(word) > 1:
            found = " ".join(g for g in (gloss(c) for c in word) if g) or None
        parts.append(found or word)
    return " · ".join(parts)
