"""The English line of each cue: the source dispatcher and Whisper's own translate task.

Sources (app.language.translate holds the text translators they use):

* ``auto`` (the default): Google when reachable, otherwise Whisper (offline);
* ``google``: Google Translate through deep-translator (online; unreachable → Whisper's English and a warning);
* ``whisper``: Whisper's own translate task, placed sentence by sentence (offline, the same model; see below);
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
from app.language.translate import (ENGLISH_SOURCES, English, LLMConfig, Sentence, english_problem,
                                    english_too_short, google_reachable, google_translate, llm_translate,
                                    sentences_of, share_over_cues, show_english)
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
# Whisper translates whole windows, not sentences. Its English segments are cut into sentences, each
# English sentence placed on the timeline (the segment's span shared by length) and given to the
# Chinese sentence (app.language.translate.sentences_of) it overlaps most; a sentence's English is
# then shared over its cues by their length, at word boundaries. A sentence whose English is missing,
# not Latin script, looping or far longer than its source is decoded again on its own audio
# (batched, app.speech.batched.translate_spans); so is one whose English also covers a neighbour
# left without any (Whisper often translates two short sentences as one English sentence: that
# English would otherwise be shown for one of them and the other's retry repeat it).
# If the retry fails too, the sentence gets CC-CEDICT glosses, marked "[gloss]", and the user is told.


_ENGLISH_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
RETRY_MARGIN = 0.2  # seconds of audio around a sentence decoded again (never into its neighbours)


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


def place_english(segments: list, sentences: list[Sentence]) -> tuple[list[str], set[int]]:
    """Each sentence's English from timed English segments (see the comment above), and the
    sentences whose English also covers a neighbour that got none (to be decoded on their own)."""
    texts: list[list[str]] = [[] for _ in sentences]
    spans = [(s.start, s.end) for s in sentences]
    overlapping: list[tuple[int, list[int]]] = []  # (sentence given the piece, the sentences it overlaps)
    for text, start, end in _english_pieces(segments):
        overlaps = [min(end, b) - max(start, a) for a, b in spans]
        best = max(range(len(sentences)), key=lambda i: (overlaps[i], -i))
        if overlaps[best] <= 0:  # between sentences: the nearest one by midpoint
            middle = (start + end) / 2
            best = min(range(len(sentences)), key=lambda i: abs((spans[i][0] + spans[i][1]) / 2 - middle))
        texts[best].append(text)
        # A piece "covers" a sentence it overlaps by half of that sentence's length or more.
        overlapping.append((best, [i for i, o in enumerate(overlaps) if i != best
                                   and o >= 0.5 * max(spans[i][1] - spans[i][0], 1e-3)]))
    shared = {best for best, others in overlapping if any(not texts[i] for i in others)}
    return [" ".join(t) for t in texts], shared


def whisper_english(cues: list[Cue], audio: np.ndarray, model, language: str | None, beam_size: int,
                    english_segments: list | None = None) -> list[str]:
    if english_segments is None:  # the sequential path: one translate pass over the whole audio
        segments, _ = model.transcribe(to_float32(audio), language=language, task="translate", beam_size=beam_size,
                                       vad_filter=True, temperature=0.0, condition_on_previous_text=False)
        english_segments = list(segments)
    sentences = sentences_of(cues)
    english, shared = place_english(english_segments, sentences)
    replaced = settle_sentences(sentences, english, audio, model, language, beam_size, retry_short=True,
                                redo=shared)
    if replaced:
        return [f"Whisper's English was unusable for {replaced} of {len(sentences)} sentences (not English, "
                f"looping or missing): CC-CEDICT glosses are shown there, marked {GLOSS_MARK.strip()}."]
    return []


# Whisper often drops a sentence from a window's English, and place_english then gives one sentence's
# English to two. The HSK bank's English runs 2.4 to 5.5 letters per hanzi (5th to 95th
# percentile): under 2 for 6 hanzi or more, a sentence is decoded again on its own audio. On 150
# zh-synth dev clips joined into one file, chrF by sentence went from 38.7 to 43.9 (README).

def retry_spans(sentences: list[Sentence], which: list[int]) -> list[tuple[float, float, int]]:
    """(start s, end s, characters) of each sentence in `which`: its words' time with a margin that
    never reaches into the sentence before or after it."""
    spans = []
    for i in which:
        start, end = sentences[i].start - RETRY_MARGIN, sentences[i].end + RETRY_MARGIN
        if i > 0:
            start = max(start, min(sentences[i - 1].end, sentences[i].start))
        if i + 1 < len(sentences):
            end = min(end, max(sentences[i + 1].start, sentences[i].end))
        spans.append((max(0.0, start), end, len(sentences[i].hanzi)))
    return spans


def settle_sentences(sentences: list[Sentence], english: list[str], audio: np.ndarray, model,
                     language: str | None, beam_size: int, retry_short: bool = False,
                     redo: set[int] = frozenset()) -> int:
    """Show each sentence's English over its cues. Sentences without usable English, (with
    `retry_short`, for Whisper's window English) with English too short to hold all of it, or in
    `redo` are decoded again by Whisper, each on its own audio, all in one batched pass; the retry
    replaces English it finds unusable or (in `redo`) its own, else the longer usable answer is kept.
    What is still unusable gets marked glosses. Returns how many got glosses."""
    english = list(english)
    hanzi = [s.hanzi for s in sentences]
    retry = [i for i, text in enumerate(english)
             if i in redo or english_problem(text, hanzi[i]) or (retry_short and english_too_short(text, hanzi[i]))]
    if retry:
        from app.speech.batched import translate_spans

        for i, again in zip(retry, translate_spans(model, audio, retry_spans(sentences, retry), language or "zh",
                                                   beam_size)):
            usable_before = english_problem(english[i], hanzi[i]) is None
            if english_problem(again, hanzi[i]) is None and (
                    i in redo or not usable_before or len(again) > len(english[i])):
                english[i] = again
    replaced, shares = 0, []
    for sentence, text in zip(sentences, english):
        if english_problem(text, sentence.hanzi):
            # each cue glosses its own words of the sentence, so the glosses line up with the hanzi
            shares.append([GLOSS_MARK + cedict_gloss([w.text for w in words]) if any(not w.is_punct for w in words)
                           else "" for _, words in sentence.pieces])
            replaced += 1
        else:
            shares.append(share_over_cues(text, sentence))
    show_english(sentences, shares)
    return replaced



def llm_english(cues: list[Cue], config: LLMConfig, audio: np.ndarray, model, language: str | None,
                beam_size: int) -> English:
    sentences = sentences_of(cues)
    english, failure = llm_translate([s.hanzi for s in sentences], config)
    english = [e or "" for e in english]
    unusable = sum(1 for s, e in zip(sentences, english) if english_problem(e, s.hanzi))
    glossed = settle_sentences(sentences, english, audio, model, language, beam_size)
    if not unusable:
        return English("llm")
    reason = f" ({failure})" if failure else ""
    # When no sentence came from the LLM, the line is Whisper's: say so where the source is shown.
    return English("whisper" if unusable == len(sentences) else "llm", [f"The LLM gave no usable English for {unusable} of {len(sentences)} sentences{reason}: Whisper's "
            f"English is shown there" + (f", CC-CEDICT glosses marked {GLOSS_MARK.strip()} for {glossed}"
                                         if glossed else "") + "."])
