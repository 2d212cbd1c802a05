"""The English line of each cue: the source dispatcher and Whisper's own translate task.

Sources (app.language.translate holds the text translators they use):

* ``auto`` (the default): Google when reachable, otherwise Whisper (offline);
* ``google``: Google Translate through deep-translator (online; unreachable → Whisper's English and a warning);
* ``whisper``: Whisper's own translate task, sentence by sentence (offline, the same model; see below);
* ``llm``: any OpenAI-compatible chat endpoint, sentences with their neighbours as context;
* ``cedict``: CC-CEDICT glosses of each jieba word (offline, word by word, good for study).

Every source but ``none`` leaves English on every cue: a source that fails hands its sentences to
Whisper, and what Whisper cannot translate shows marked glosses. `english_for` says which source gave it.
"""

from __future__ import annotations

import re

import numpy as np

from app.language.gloss import GLOSS_MARK, cedict_gloss
from app.language.subtitles import Cue
from app.language.translate import (ENGLISH_SOURCES, English, LLMConfig, english_problem, english_too_short,
                                    google_reachable, google_translate, hanzi_of, llm_translate,
                                    sentences_of, share_over_cues)
from app.speech.audio import to_float32

def resolve_source(source: str) -> tuple[str, list[str]]:
    """`auto` and `google` made concrete before decoding, with a warning when Google was asked for
    by name: the batched path decodes Whisper's English on the transcription's own encoder output,
    so whether Whisper will be needed must be known before the audio is decoded."""
    if source not in ("auto", "google") or google_reachable():
        return ("google" if source == "auto" else source), []
    if source == "google":
        return "whisper", ["Google Translate is unreachable: Whisper's English (offline) is shown instead."]
    return "whisper", []


def english_for(cues: list[Cue], source: str, *, audio: np.ndarray | None = None, model=None,
                language: str | None = "zh", beam_size: int = 5, english_segments: list | None = None,
                llm: LLMConfig | None = None, gloss_level: int = 0) -> English:
    """Fill `cue.english` in place from `source`; the English says which source gave it.
    `gloss_level`: the cedict source glosses only words of this HSK level or above (0: all).

    `english_segments`: Whisper's English already decoded with the transcription (the batched path
    decodes it on the same encoder output); without them the whisper source runs its own pass."""
    if source == "none" or not cues:
        return English("none")
    if source not in ENGLISH_SOURCES:
        raise ValueError(f"unknown English source {source!r}; choose from {', '.join(ENGLISH_SOURCES)}")
    warnings: list[str] = []
    if source == "auto":
        source, warnings = resolve_source(source)
    if source == "cedict":
        for cue in cues:
            cue.english = cedict_gloss([w.text for w in cue.words], gloss_level)
        return English("cedict")
    if source in ("whisper", "google", "llm") and (audio is None or model is None):
        raise ValueError(f"{source} English needs the audio and the model (Whisper is the fallback)")
    if source == "google":
        failure = google_translate(cues, language)
        if failure is None:
            return English("google")
        warnings.append(f"{failure}: Whisper's English (offline) is shown instead.")
    if source == "llm":
        if llm is None:
            raise ValueError("the llm source needs an LLM URL and model (--llm-url, --llm-model)")
        return llm_english(cues, llm, audio, model, language, beam_size)
    return English("whisper", warnings + whisper_english(cues, audio, model, language, beam_size, english_segments))


# --- Whisper's English -------------------------------------------------------------------------
# Whisper translates whole windows, not cues. Its English segments are cut into sentences, each
# sentence placed on the timeline (the segment's span shared by length) and given to the Chinese
# sentence (a run of cues up to 。！？ or a pause) it overlaps most; a sentence's English is then
# shared over its cues by their length, at word boundaries. A sentence whose English is missing,
# not Latin script, looping or far longer than its source is decoded again on its own audio
# (batched, app.speech.batched.translate_spans);
# if that fails too, it gets CC-CEDICT glosses, marked "[gloss]", and the user is told.


_ENGLISH_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


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



def whisper_english(cues: list[Cue], audio: np.ndarray, model, language: str | None, beam_size: int,
                    english_segments: list | None = None) -> list[str]:
    if english_segments is None:  # the sequential path: one translate pass over the whole audio
        segments, _ = model.transcribe(to_float32(audio), language=language, task="translate", beam_size=beam_size,
                                       vad_filter=True, temperature=0.0, condition_on_previous_text=False)
        english_segments = list(segments)
    placed = place_english(english_segments, sentences_of(cues))
    replaced = settle_sentences(placed, audio, model, language, beam_size, retry_short=True)
    if replaced:
        return [f"Whisper's English was unusable for {replaced} of {len(placed)} sentences (not English, "
                f"looping or missing): CC-CEDICT glosses are shown there, marked {GLOSS_MARK.strip()}."]
    return []


# Whisper often drops a sentence from a window's English, and place_english then gives one sentence's
# English to two. The HSK bank's English runs 2.4 to 5.5 letters per hanzi (5th to 95th
# percentile): under 2 for 6 hanzi or more, a sentence is decoded again on its own audio. On 150
# zh-synth dev clips joined into one file, chrF by sentence went from 38.7 to 43.9 (README).

def settle_sentences(placed: list[tuple[list[Cue], str]], audio: np.ndarray, model, language: str | None,
                     beam_size: int, retry_short: bool = False) -> int:
    """Show each sentence's English over its cues. Sentences without usable English, or (with
    `retry_short`, for Whisper's window English) with English too short to hold all of it, are
    decoded again by Whisper, each on its own audio, all in one batched pass (the longer usable
    answer is kept); what is still unusable gets marked glosses. Returns how many got glosses."""
    hanzi = [hanzi_of(group) for group, _ in placed]
    retry = [i for i, (_, english) in enumerate(placed)
             if english_problem(english, hanzi[i]) or (retry_short and english_too_short(english, hanzi[i]))]
    if retry:
        from app.speech.batched import translate_spans

        spans = [(max(0.0, placed[i][0][0].start - 0.15), placed[i][0][-1].end + 0.15, len(hanzi[i])) for i in retry]
        for i, english in zip(retry, translate_spans(model, audio, spans, language or "zh", beam_size)):
            group, before = placed[i]
            usable_before = english_problem(before, hanzi[i]) is None
            if english_problem(english, hanzi[i]) is None and (not usable_before or len(english) > len(before)):
                placed[i] = (group, english)
    replaced = 0
    for (group, english), text in zip(placed, hanzi):
        if english_problem(english, text):
            for cue in group:  # each cue glosses its own words, so the glosses line up with the hanzi
                cue.english = GLOSS_MARK + cedict_gloss([w.text for w in cue.words])
            replaced += 1
        else:
            share_over_cues(english, group)
    return replaced



def llm_english(cues: list[Cue], config: LLMConfig, audio: np.ndarray, model, language: str | None,
                beam_size: int) -> English:
    groups = sentences_of(cues)
    texts = [hanzi_of(g) for g in groups]
    english, failure = llm_translate(texts, config)
    placed = [(g, e or "") for g, e in zip(groups, english)]
    unusable = sum(1 for g, e in placed if english_problem(e, hanzi_of(g)))
    glossed = settle_sentences(placed, audio, model, language, beam_size)
    if not unusable:
        return English("llm")
    reason = f" ({failure})" if failure else ""
    # When no sentence came from the LLM, the line is Whisper's: say so where the source is shown.
    return English("whisper" if unusable == len(groups) else "llm", [f"The LLM gave no usable English for {unusable} of {len(groups)} sentences{reason}: Whisper's "
            f"English is shown there" + (f", CC-CEDICT glosses marked {GLOSS_MARK.strip()} for {glossed}"
                                         if glossed else "") + "."])
