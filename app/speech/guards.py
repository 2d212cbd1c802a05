"""Hallucination guards: what Whisper says when nobody speaks, and the loops it falls into.

Silero VAD and Whisper's own thresholds (no-speech probability, compression ratio, log-probability,
set explicitly in app.speech.transcribe) stop most of it; these catch what still gets through:
* segments that are one of the captions Whisper learnt from subtitled videos with silent tails
  ("字幕由Amara.org社群提供", "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目", …);
* segments that look like silence to the model (high no-speech probability and low confidence);
* repetition loops inside the kept text ("他家在西北GGGGGGGGG", a phrase said five times).
"""

from __future__ import annotations

import dataclasses
import re

from app.language.subtitles import Word
from app.language.text import normalize_for_cer

# Normalised (Simplified, no punctuation/spaces, lower case) fragments that never occur in real
# speech of a video: credits and calls to subscribe that Whisper copies from its training captions.
KNOWN_HALLUCINATIONS = (
    "字幕由amaraorg社群提供",
    "amaraorg社区提供",
    "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "明镜与点点栏目",
    "中文字幕志愿者",
    "字幕志愿者",
    "字幕by",
    "优优独播剧场",
    "本字幕由",
    "subtitlesbytheamaraorgcommunity",
)

# Whisper's own rule for a silent window, applied to each kept segment as well.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
MAX_COMPRESSION_RATIO = 2.4


def is_known_hallucination(text: str) -> bool:
    norm = normalize_for_cer(text)
    return bool(norm) and any(h in norm for h in KNOWN_HALLUCINATIONS)


def drop_segment(segment) -> bool:
    """True for a segment that is a known silence caption, or silence the model was unsure about."""
    if is_known_hallucination(segment.text) or drop_window(segment):
        return True
    return segment.compression_ratio > MAX_COMPRESSION_RATIO and segment.avg_logprob < LOW_LOGPROB


def drop_window(segment) -> bool:
    """The batched path's segments are whole VAD windows (up to 30 s, one decoding): only Whisper's
    own silence rule is applied to the window as a whole. Its compression ratio is left to
    `collapse_repeats`, which removes a loop without dropping the speech around it."""
    return segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < LOW_LOGPROB


PIECE_PAUSE = 0.3  # seconds between words that separate the pieces a caption is looked for in


def strip_known_hallucinations(words: list[Word]) -> list[Word]:
    """Remove the pieces (runs of words between pauses or sentence ends) that are a known silence
    caption, keeping the speech around them: in a 30-s window the caption is a tail, not the whole."""
    pieces: list[list[Word]] = []
    for word in words:
        if not pieces or word.start - pieces[-1][-1].end >= PIECE_PAUSE or pieces[-1][-1].text[-1:] in "。！？!?":
            pieces.append([])
        pieces[-1].append(word)
    kept = [p for p in pieces if not is_known_hallucination("".join(w.text for w in p))]
    if len(kept) == len(pieces):
        return words
    return [w for p in kept for w in p]


LONGEST_CHAR_RUN = 4  # one character five or more times in a row is a loop: GGGGG, 0000
_CHAR_RUN = re.compile(r"(.)\1{%d,}" % LONGEST_CHAR_RUN)


def collapse_char_runs(chars: list, longest: int = LONGEST_CHAR_RUN) -> list:
    """Timed characters (dataclasses with `text`, `end` and `mark`: app.speech.live's Char) with a
    character said more than `longest` times in a row kept once, spanning the loop's time: the
    same loop as _CHAR_RUN's, where it is spread over several of Whisper's words (1111111) and so
    collapse_repeats, working within and across whole words, does not see it."""
    out: list = []
    run = 0
    for c in chars:
        run = run + 1 if out and out[-1].text == c.text else 1
        if run <= longest:
            out.append(c)
            continue
        if run == longest + 1:
            del out[len(out) - longest + 1:]
        out[-1] = dataclasses.replace(out[-1], end=c.end, mark=c.mark)  # the mark after the loop stays
    return out


def collapse_repeats(words: list[Word]) -> list[Word]:
    """Collapse loops: a run of one word 5+ times, or of a 2-8 word phrase 3+ times, kept once.

    Ordinary reduplication (看看, 哈哈哈, 谢谢谢谢) stays: it is shorter than these runs.
    """
    words = [Word(_CHAR_RUN.sub(r"\1", w.text), w.start, w.end) if _CHAR_RUN.search(w.text) else w for w in words]
    out: list[Word] = []
    i = 0
    while i < len(words):
        collapsed = False
        for n in range(8, 0, -1):
            unit = [w.text for w in words[i:i + n]]
            if len(unit) < n:
                continue
            repeats = 1
            while [w.text for w in words[i + repeats * n:i + (repeats + 1) * n]] == unit:
                repeats += 1
            if repeats >= (5 if n == 1 else 3):
                last = words[i + repeats * n - 1]
                kept = words[i:i + n]
                kept[-1] = Word(kept[-1].text, kept[-1].start, last.end)  # the loop's time stays covered
                out.extend(kept)
                i += repeats * n
                collapsed = True
                break
        if not collapsed:
            out.append(words[i])
            i += 1
    return out
