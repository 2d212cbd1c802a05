"""The transcription pipeline: audio → faster-whisper (Silero VAD, word timestamps) → Simplified
text with timed jieba words → subtitle cues with pinyin and English.

Whisper base often answers Mandarin in Traditional characters; every segment goes through OpenCC
t2s, so the output never holds a Traditional-only character whatever the model did.

No initial prompt by default, on measurement: the usual Simplified prompt ("以下是普通话的句子。")
combined with word timestamps makes faster-whisper re-decode short clips, repeating sentences or
the prompt itself. On the first 80 zh-synth dev clips (beam 5, VAD, word timestamps) CER was
24.5% with that prompt and 5.3% without; t2s alone already removes every Traditional character.
`initial_prompt` stays available for users who want to bias vocabulary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from app.audio import SAMPLE_RATE
from app.errors import UserError
from app.guards import LOW_LOGPROB, MAX_COMPRESSION_RATIO, NO_SPEECH_PROB, collapse_repeats, drop_segment
from app.pinyin import pinyin_of_words
from app.subtitles import Cue, CueRules, Word, build_cues
from app.text import clean_transcript_aligned, has_cjk, split_words
from app.translate import translate_cues

Progress = Callable[[float, str], None]


@dataclass
class TranscribeOptions:
    language: str | None = "zh"  # None = detect
    english: str = "whisper"  # see app.translate.ENGLISH_SOURCES
    beam_size: int = 5
    vad: bool = True
    initial_prompt: str | None = None  # see the module docstring before setting one
    cue_rules: CueRules = field(default_factory=CueRules)


@dataclass
class Transcript:
    cues: list[Cue]
    language: str
    duration: float
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall-clock time of the whole pipeline
    model_seconds: float = 0.0  # of which waiting for faster-whisper (VAD, encoder, decoder, alignment)

    @property
    def text(self) -> str:
        return "".join(c.hanzi for c in self.cues)


def _char_times(segment) -> list[tuple[str, float, float]]:
    """Spread each recogniser word's span evenly over its characters (Whisper words are often
    several hanzi: '這個' 0.00–0.36 s gives 這 0.00–0.18, 個 0.18–0.36)."""
    chars = []
    for w in segment.words or []:
        visible = [c for c in w.word if not c.isspace()]
        if not visible:
            continue
        step = (w.end - w.start) / len(visible)
        for i, c in enumerate(visible):
            chars.append((c, w.start + i * step, w.start + (i + 1) * step))
    if not chars:  # no word timestamps: spread the segment evenly
        visible = [c for c in segment.text if not c.isspace()]
        step = (segment.end - segment.start) / max(1, len(visible))
        chars = [(c, segment.start + i * step, segment.start + (i + 1) * step) for i, c in enumerate(visible)]
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


def transcribe(audio: np.ndarray, model, options: TranscribeOptions | None = None,
               progress: Progress | None = None) -> Transcript:
    """Run the full pipeline on 16 kHz mono audio. Raises UserError when no speech is found."""
    options = options or TranscribeOptions()
    started = time.perf_counter()
    duration = audio.size / SAMPLE_RATE
    language = options.language or None
    segments, info = model.transcribe(
        audio,
        language=language,
        task="transcribe",
        beam_size=options.beam_size,
        vad_filter=options.vad,
        word_timestamps=True,
        initial_prompt=options.initial_prompt or None,
        no_speech_threshold=NO_SPEECH_PROB,
        compression_ratio_threshold=MAX_COMPRESSION_RATIO,
        log_prob_threshold=LOW_LOGPROB,
    )
    per_segment: list[list[Word]] = []
    model_seconds = time.perf_counter() - started
    segments = iter(segments)
    while True:
        waiting = time.perf_counter()
        segment = next(segments, None)
        model_seconds += time.perf_counter() - waiting
        if segment is None:
            break
        words = [] if drop_segment(segment) else collapse_repeats(timed_words(segment))
        if words:
            per_segment.append(words)
        if progress:
            progress(min(1.0, segment.end / max(duration, 1e-6)), "Transcribing")
    cues = build_cues(per_segment, options.cue_rules)
    if not cues:
        raise UserError("no speech found in the audio")
    for cue in cues:
        cue.pinyin = pinyin_of_words([w.text for w in cue.words])
    if progress and options.english not in ("none", ""):
        progress(1.0, "Translating")
    warnings = translate_cues(cues, options.english, audio=audio, model=model,
                              language=info.language, beam_size=options.beam_size)
    return Transcript(cues=cues, language=info.language, duration=duration, warnings=warnings,
                      seconds=time.perf_counter() - started, model_seconds=model_seconds)
