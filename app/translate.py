"""The English line of each cue, from one of three sources:

* ``whisper``: Whisper's own translate task, sentence by sentence (offline, the same model; see below);
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
                   language: str | None = "zh", beam_size: int = 5, english_segments: list | None = None) -> list[str]:
    """Fill `cue.english` in place; return warnings for the user (never raises for network trouble).

    `english_segments`: Whisper's English already decoded with the transcription (the batched path
    decodes it on the same encoder output); without them the whisper source runs its own pass."""
    if source == "none" or not cues:
        return []
    if source == "whisper":
        if audio is None or model is None:
            raise ValueError("whisper translation needs the audio and the model")
        return whisper_english(cues, audio, model, language, beam_size, english_segments)
    if source == "google":
        return google_translate(cues, language)
    if source == "cedict":
        for cue in cues:
            cue.english = cedict_gloss([w.text for w in cue.words])
        return []
    raise ValueError(f"unknown English source {source!r}; choose from {', '.join(ENGLISH_SOURCES)}")


# --- Whisper's English -------------------------------------------------------------------------
# Whisper translates whole windows, not cues. Its English segments are cut into sentences, each
# sentence placed on the timeline (the segment's span shared by length) and given to the Chinese
# sentence (a run of cues up to 。！？ or a pause) it overlaps most; a sentence's English is then
# shared over its cues by their length, at word boundaries. A sentence whose English is missing,
# not Latin script, looping or far longer than its source is decoded again on its own audio
# (batched, app.batched.translate_spans);
# if that fails too, it gets CC-CEDICT glosses, marked "[gloss]", and the user is told.

SENTENCE_GAP = 1.0  # seconds of pause that end a Chinese sentence even without 。！？
MAX_SENTENCE_CUES = 4
MAX_SENTENCE_CHARS = 32  # unpunctuated speech: translate it in pieces a learner can match up
GLOSS_MARK = "[gloss] "
_ENGLISH_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NOT_LATIN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def sentences_of(cues: list[Cue]) -> list[list[Cue]]:
    """Cues grouped into sentences: up to sentence-final punctuation, a pause, or 4 cues."""
    groups: list[list[Cue]] = []
    for cue in cues:
        if groups and not _ends_sentence(groups[-1], cue):
            groups[-1].append(cue)
        else:
            groups.append([cue])
    return groups


def _ends_sentence(group: list[Cue], following: Cue) -> bool:
    last = group[-1]
    return (last.hanzi.rstrip()[-1:] in "。！？…!?" or following.start - last.end >= SENTENCE_GAP
            or len(group) >= MAX_SENTENCE_CUES or len(_hanzi(group)) >= MAX_SENTENCE_CHARS)


def _english_pieces(segments: list) -> list[tuple[str, float, float]]:
    """Each English segment cut into sentences, its time span shared by their length."""
    pieces = []
    for segment in segments:
        parts = [p.strip() for p in _ENGLISH_SENTENCE_END.split(segment.text.strip()) if p.strip()]
        total = sum(len(p) for p in parts) or 1
        at = segment.start
        for part in parts:
            step = (segment.end - segment.start) * len(part) / total
            pieces.append((part, at, at + step))
            at += step
    return pieces


def place_english(segments: list, groups: list[list[Cue]]) -> list[tuple[list[Cue], str]]:
    """Sentences with their English from timed English segments (see the comment above). Whisper
    often translates two short Chinese sentences as one: a sentence left without English that the
    same English piece overlaps joins its neighbour, and the English is shown over both."""
    texts: list[list[str]] = [[] for _ in groups]
    touched: list[set[int]] = [set() for _ in groups]  # which pieces overlap each sentence
    for n, (text, start, end) in enumerate(_english_pieces(segments)):
        overlaps = [min(end, g[-1].end) - max(start, g[0].start) for g in groups]
        best = max(range(len(groups)), key=lambda i: (overlaps[i], -i))
        if overlaps[best] <= 0:  # between sentences: the nearest one by midpoint
            middle = (start + end) / 2
            best = min(range(len(groups)), key=lambda i: abs((groups[i][0].start + groups[i][-1].end) / 2 - middle))
        texts[best].append(text)
        for i, overlap in enumerate(overlaps):
            if overlap > 0:
                touched[i].add(n)
        touched[best].add(n)
    placed: list[tuple[list[Cue], str]] = []
    for i, group in enumerate(groups):
        shares_piece = placed and touched[i] & touched[i - 1]
        if not texts[i] and shares_piece:
            placed[-1] = (placed[-1][0] + group, placed[-1][1])
        elif placed and not placed[-1][1] and shares_piece:
            placed[-1] = (placed[-1][0] + group, " ".join(texts[i]))
        else:
            placed.append((list(group), " ".join(texts[i])))
    return placed


def english_problem(english: str, hanzi: str) -> str | None:
    """Why a line of Whisper's English can't be shown to a learner, or None when it can."""
    from faster_whisper.transcribe import get_compression_ratio

    if not english.strip():
        return "empty"
    if _NOT_LATIN.search(english):
        return "not English"
    if len(english) > 20 and get_compression_ratio(english) > 2.4:
        return "repeats itself"
    if len(english) > 40 + 8 * len(hanzi):
        return "far longer than the Chinese"
    return None


def whisper_english(cues: list[Cue], audio: np.ndarray, model, language: str | None, beam_size: int,
                    english_segments: list | None = None) -> list[str]:
    if english_segments is None:  # the sequential path: one translate pass over the whole audio
        segments, _ = model.transcribe(audio, language=language, task="translate", beam_size=beam_size,
                                       vad_filter=True, temperature=0.0, condition_on_previous_text=False)
        english_segments = list(segments)
    placed = place_english(english_segments, sentences_of(cues))
    # Sentences without usable English are decoded again, each on its own audio, all in one batched pass.
    retry = [i for i, (group, english) in enumerate(placed) if english_problem(english, _hanzi(group))]
    if retry:
        from app.batched import translate_spans

        spans = [(max(0.0, placed[i][0][0].start - 0.15), placed[i][0][-1].end + 0.15, len(_hanzi(placed[i][0])))
                 for i in retry]
        for i, english in zip(retry, translate_spans(model, audio, spans, language or "zh", beam_size)):
            placed[i] = (placed[i][0], english)
    replaced = 0
    for group, english in placed:
        if english_problem(english, _hanzi(group)):
            english = GLOSS_MARK + cedict_gloss([w.text for c in group for w in c.words])
            replaced += 1
        share_over_cues(english, group)
    if replaced:
        return [f"Whisper's English was unusable for {replaced} of {len(placed)} sentences (not English, "
                f"looping or missing): CC-CEDICT glosses are shown there, marked {GLOSS_MARK.strip()}."]
    return []


def _hanzi(group: list[Cue]) -> str:
    return "".join(c.hanzi for c in group)


def share_over_cues(english: str, group: list[Cue]) -> None:
    """A sentence's English over its cues, in order, split at spaces in proportion to each cue's length."""
    words = english.split()
    if len(group) == 1 or len(words) < len(group):  # too short to share: every cue shows all of it
        for cue in group:
            cue.english = english
        return
    lengths = [max(1, len(c.hanzi)) for c in group]
    total, done, at = sum(lengths), 0, 0
    for i, cue in enumerate(group):
        done += lengths[i]
        stop = len(words) if i == len(group) - 1 else round(len(words) * done / total)
        cue.english = " ".join(words[at:stop])
        at = stop


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
