"""The transcription pipeline: audio → faster-whisper (Silero VAD, word timestamps) → Simplified
text with timed jieba words → subtitle cues with pinyin and English.

Whisper base often answers Mandarin in Traditional characters; every segment goes through OpenCC
t2s, so the output never holds a Traditional-only character whatever the model did.

No initial prompt by default, on measurement: the usual Simplified prompt ("以下是普通话的句子。")
combined with word timestamps makes faster-whisper re-decode short clips, repeating sentences or
the prompt itself. On the first 80 zh-synth dev clips (beam 5, VAD, word timestamps) CER was
24.5% with that prompt and 5.3% without; t2s alone already removes every Traditional character.
`initial_prompt` stays available for users who want to bias vocabulary.

Long media is decoded by `app.speech.batched` (faster-whisper's BatchedInferencePipeline, lazily: VAD
windows decoded 4 at a time): on the 10-minute benchmark file it is several times faster than the
sequential path and makes fewer errors, since no window inherits the previous window's mistakes.
The sequential path (one window after another, temperature fallback) remains where it measures as
well or better: media shorter than one window, VAD switched off, and the Practice tab (README,
"Speed and memory").
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from app.speech.audio import SAMPLE_RATE, to_float32
from app.speech.batched import DEFAULT_BATCH_SIZE, Batch, decode_batched
from app.base.errors import UserError
from app.speech.guards import (LOW_LOGPROB, MAX_COMPRESSION_RATIO, NO_SPEECH_PROB, collapse_repeats, drop_segment,
                        drop_window, strip_known_hallucinations)
from app.language.pinyin import pinyin_of_words
from app.language.punctuation import punctuate
from app.language.subtitles import Cue, CueRules, Word, build_cues
from app.language.text import clean_transcript_aligned, has_cjk, split_words, spread_span
from app.language.translate import LLMConfig
from app.speech.english import english_for, resolve_source

Progress = Callable[[float, str], None]


@dataclass
class TranscribeOptions:
    language: str | None = "zh"  # None = detect
    english: str = "auto"  # see app.language.translate.ENGLISH_SOURCES
    llm_url: str | None = None  # the llm source's OpenAI-compatible endpoint (key: $ZIMU_LLM_API_KEY)
    llm_model: str | None = None
    gloss_level: int = 0  # CC-CEDICT glosses only for words of this HSK 3.0 level or above (0: every word)
    beam_size: int = 5
    vad: bool = True
    initial_prompt: str | None = None  # see the module docstring before setting one
    cue_rules: CueRules = field(default_factory=CueRules)
    # Windows decoded at once by the batched path; 1 = the sequential path (see `uses_batched`).
    batch_size: int = DEFAULT_BATCH_SIZE


@dataclass
class Transcript:
    cues: list[Cue]
    language: str
    duration: float
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall-clock time of the whole pipeline
    model_seconds: float = 0.0  # of which waiting for faster-whisper (VAD, encoder, decoder, alignment)
    complete: bool = True  # False while decoding goes on (cues so far, no English yet)
    decoder: str = ""  # "batched" or "sequential"
    english_source: str = ""  # which source gave the English line (app.language.translate.SOURCE_NAMES); "" while partial

    @property
    def text(self) -> str:
        return "".join(c.hanzi for c in self.cues)


def _char_times(segment) -> list[tuple[str, float, float]]:
    """Each recogniser word's span shared by its characters; with no word timestamps, the segment's."""
    chars = []
    for w in segment.words or []:
        chars += spread_span([c for c in w.word if not c.isspace()], w.start, w.end)
    if not chars:
        chars = spread_span([c for c in segment.text if not c.isspace()], segment.start, segment.end)
    return chars


def timed_words(segment) -> list[Word]:
    """Simplified jieba words of one segment, each with the span of its characters."""
    chars = _char_times(segment)
    if not chars:
        return []
    raw = "".join(c for c, _, _ in chars)
    text = clean_transcript_aligned(raw)  # same length as raw, so char times carry over
    if not has_cjk(text):
        # Latin-script languages keep Whisper's own word split (spaces matter there).
        return [Word(w.word.strip(), w.start, w.end) for w in segment.words or [] if w.word.strip()] or [
            Word(text, segment.start, segment.end)
        ]
    words, i = [], 0
    for piece in split_words(text):
        span = chars[i:i + len(piece)]
        i += len(piece)
        if span:
            words.append(Word(piece, span[0][1], span[-1][2]))
    return words



# Media shorter than this is one window anyway: batching has nothing to batch, and the sequential
# path's temperature fallback can rescue a clip that greedy-at-temperature-0 decoding garbles.
SEQUENTIAL_BELOW_SECONDS = 30.0
SEED = 1234  # the sequential path's temperature fallback samples: a fixed seed keeps results repeatable


def uses_batched(options: TranscribeOptions, duration: float) -> bool:
    return options.vad and options.batch_size > 1 and duration >= SEQUENTIAL_BELOW_SECONDS


def _decode(audio: np.ndarray, model, options: TranscribeOptions, translate: bool) -> tuple[str, Iterator[Batch]]:
    """Both paths as batches of recogniser segments (the sequential path: one segment each)."""
    language = options.language or None
    if uses_batched(options, audio.size / SAMPLE_RATE):
        return decode_batched(model, audio, language=language, beam_size=options.beam_size,
                              batch_size=options.batch_size, initial_prompt=options.initial_prompt,
                              translate=translate)
    import ctranslate2

    ctranslate2.set_random_seed(SEED)
    segments, info = model.transcribe(
        to_float32(audio), language=language, task="transcribe", beam_size=options.beam_size, vad_filter=options.vad,
        word_timestamps=True, initial_prompt=options.initial_prompt or None, no_speech_threshold=NO_SPEECH_PROB,
        compression_ratio_threshold=MAX_COMPRESSION_RATIO, log_prob_threshold=LOW_LOGPROB,
    )
    return info.language, (Batch([s], [], s.end) for s in segments)


def _words_of(segment, batched: bool) -> list[Word]:
    """Timed words of one recogniser segment with the hallucination guards applied. A batched segment
    is a whole window of up to 30 s: only its window-level silence rule drops it whole; captions are
    cut out piece by piece and loops collapsed, so real speech in the same window survives."""
    if (drop_window if batched else drop_segment)(segment):
        return []
    return collapse_repeats(strip_known_hallucinations(timed_words(segment)))


def words_of_segments(segments, batched: bool) -> list[list[Word]]:
    """Each recogniser segment's guarded timed words; segments left with none are dropped."""
    return [w for w in (_words_of(s, batched) for s in segments) if w]


def punctuated(batches: list[list[list[Word]]], batched: bool) -> list[list[Word]]:
    """Every segment's words with the marks `punctuate` adds. On the batched path each batch is
    punctuated as it comes (a batch ends where a window does: its end is a sentence end), so the
    cues shown while decoding are the finished transcript's; the sequential path's segments are
    punctuated together, each segment's end read against the start of the next."""
    if batched:
        return [words for batch in batches for words in punctuate(batch)]
    return punctuate([words for batch in batches for words in batch])


def cues_of_segments(batches: list[list], batched: bool, rules: CueRules) -> list[Cue]:
    """The finished transcript's cues (no pinyin, no English) from the recogniser's segments, batch
    by batch: what `iter_transcribe` builds, for evaluators that replay saved segments."""
    return build_cues(punctuated([words_of_segments(b, batched) for b in batches], batched), rules)


def decode_segments(audio: np.ndarray, model, options: TranscribeOptions) -> tuple[str, list[list]]:
    """The language and the recogniser's segments of the audio, batch by batch, on the path
    `iter_transcribe` takes (no English)."""
    language, batches = _decode(audio, model, options, translate=False)
    return language, [batch.segments for batch in batches]


def warm_text_tools() -> None:
    """Load what the text side needs (jieba and its tags, the CC-CEDICT index, OpenCC: about 2 s on
    2 cores) before the first window comes back. Run on a thread while Silero VAD scans the audio
    on one core, it costs no wall time."""
    pinyin_of_words(split_words(clean_transcript_aligned("預熱我們的字典")))


def iter_transcribe(audio: np.ndarray, model, options: TranscribeOptions | None = None,
                    progress: Progress | None = None, partial: bool = True) -> Iterator[Transcript]:
    """Run the pipeline on 16 kHz mono audio (int16 or float32), yielding the transcript as it grows:
    after each decoded batch the cues so far (`complete` False, no English; only with `partial`),
    last the finished transcript with English. Raises UserError when no speech is found."""
    options = options or TranscribeOptions()
    started = time.perf_counter()
    duration = audio.size / SAMPLE_RATE
    threading.Thread(target=warm_text_tools, name="warm-text-tools", daemon=True).start()
    batched = uses_batched(options, duration)
    # `auto` (and an unreachable `google`) becomes Whisper here, so its English is decoded with the text.
    english, english_warnings = resolve_source(options.english)
    whisper_english = english == "whisper"
    language, decoded = _decode(audio, model, options, translate=whisper_english and batched)
    model_seconds = time.perf_counter() - started
    per_batch: list[list[list[Word]]] = []
    english_segments: list = []
    pinyin_cache: dict[tuple[str, ...], str] = {}

    def with_pinyin(cues: list[Cue]) -> list[Cue]:
        for cue in cues:
            key = tuple(w.text for w in cue.words)
            if key not in pinyin_cache:
                pinyin_cache[key] = pinyin_of_words(list(key))
            cue.pinyin = pinyin_cache[key]
        return cues

    shown: list[Cue] = []  # the partial cues: each batch's new cues appended, not the whole file rebuilt

    def snapshot(cues: list[Cue], complete: bool, warnings: list[str], english_source: str = "") -> Transcript:
        return Transcript(cues=cues, language=language, duration=duration, warnings=warnings,
                          seconds=time.perf_counter() - started, model_seconds=model_seconds,
                          complete=complete, decoder="batched" if batched else "sequential",
                          english_source=english_source)

    while True:
        waiting = time.perf_counter()
        piece = next(decoded, None)
        model_seconds += time.perf_counter() - waiting
        if piece is None:
            break
        english_segments += piece.english
        added = words_of_segments(piece.segments, batched)
        per_batch.append(added)
        if progress:
            progress(min(1.0, piece.reached / max(duration, 1e-6)), "Transcribing")
        if added and partial:
            # Cue rules see only this batch here (a 3-hour file would otherwise rebuild every cue after
            # every batch); the finished transcript below is built from all segments at once.
            # A batch's end is a window's (a sentence end); a sequential segment's end waits for the next.
            shown = shown + with_pinyin(build_cues(punctuate(added, final=batched), options.cue_rules))
            yield snapshot(shown, False, [])
    cues = with_pinyin(build_cues(punctuated(per_batch, batched), options.cue_rules))  # = cues_of_segments
    if not cues:
        raise UserError("no speech found in the audio")
    if progress and options.english not in ("none", ""):
        progress(1.0, "Translating")
    llm = LLMConfig(options.llm_url, options.llm_model) if options.llm_url and options.llm_model else None
    result = english_for(cues, english, audio=audio, model=model, language=language, beam_size=options.beam_size,
                         english_segments=english_segments if batched else None, llm=llm,
                         gloss_level=options.gloss_level)
    yield snapshot(cues, True, english_warnings + result.warnings, result.source)


def transcribe(audio: np.ndarray, model, options: TranscribeOptions | None = None,
               progress: Progress | None = None) -> Transcript:
    """The finished transcript (see `iter_transcribe`). Raises UserError when no speech is found."""
    transcript = None
    for transcript in iter_transcribe(audio, model, options, progress, partial=False):
        pass
    return transcript
