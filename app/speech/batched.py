"""Batched long-form decoding: faster-whisper's `BatchedInferencePipeline`, lazy and memory-bounded,
with an optional English translation decoded on the same encoder output.

Why not the stock `BatchedInferencePipeline.transcribe` as it is (faster-whisper 1.2):
* it copies all the speech into chunk arrays and computes the log-mel of *every* chunk before the
  first batch is decoded (for a 60-minute file ~0.5 GB besides the audio, and nothing to show until
  all of it is done); here only the chunk boundaries are kept for the whole file and each batch is
  cut, featurised and decoded in turn, so the first segments arrive after the first batch;
* Whisper's English would otherwise cost a second encoder pass over every chunk; here the translate
  prompt is decoded on the encoder output the transcription already computed;
* Silero VAD over the whole file at once takes three float32 copies of it (padding, then windows
  with their context: 2 GB for 3 hours); here media over 30 minutes goes in 5-minute blocks cut in
  the quietest moment near each edge, so the audio itself can stay int16 (`speech_regions`).

* the stock pipeline decodes each window without timestamp tokens, so a window is one 30-s segment:
  no sentence ends for the cues, and when Whisper stops early (it often does on real speech: of
  2.3 minutes of joined real clips, 49 % of the characters were lost) the rest of the window is
  gone, since nothing seeks on as the sequential path does. Here windows are decoded with Whisper's
  timestamp tokens (segments of a sentence or clause each), and a window whose words leave a
  stretch of its speech uncovered is decoded again from there (`LazyBatchedPipeline.forward`).

The chunking (Silero VAD, regions packed into ≤ 30 s windows), the prompts and the decoding are the
stock ones (`forward` runs faster-whisper's own), so a window that needs no second pass gives what
plain BatchedInferencePipeline gives with `without_timestamps=False`. Decoding is at temperature 0
only, without text conditioning between windows: the same file and options give the same segments
every time.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from math import ceil
from typing import Iterator

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import (
    Segment,
    TranscriptionOptions,
    get_compression_ratio,
    get_suppressed_tokens,
    restore_speech_timestamps,
)
from faster_whisper.vad import VadOptions, get_speech_timestamps

from app.speech.audio import SAMPLE_RATE, to_float32

CHUNK_SECONDS = 30  # Whisper's window
# English tokens (with timestamps) allowed per token of the window's Chinese transcription.
ENGLISH_TOKENS_PER_CHINESE = 1.5
# Measured on 2 cores with two workers (README, "Speed and memory"): batches of 4, 8 and 16 windows
# took the same time (26.1, 26.7, 27.3 s on the 10-minute file), but peak memory grows with the
# decoder's beam caches (batch × beam × layers × 1500 frames): 1.18, 1.60, 2.21 GB. 4 is the smallest
# that keeps both workers busy, and its first cues come after 2 minutes of speech, not 4.
# $ZIMU_BATCH_SIZE for a server.
DEFAULT_BATCH_SIZE = int(os.environ.get("ZIMU_BATCH_SIZE", 4))


def default_vad_options() -> VadOptions:
    """The stock batched pipeline's VAD: split at 160 ms pauses, regions of at most one window."""
    return VadOptions(max_speech_duration_s=CHUNK_SECONDS, min_silence_duration_ms=160)


# Silero over a whole file takes ~18 bytes a sample at the peak (float32 copies, padded windows,
# onnxruntime's buffers): 0.54 GB for 30 minutes, measured. Up to that, one pass, exactly the stock
# regions; longer media goes in 5-minute blocks (3 hours: 0.99 GB peak for the whole job).
WHOLE_FILE_VAD_SECONDS = 30 * 60
VAD_BLOCK_SECONDS = 5 * 60
VAD_EDGE_SEARCH_SECONDS = 5.0
VAD_FRAME = 512  # Silero's window at 16 kHz


def quietest_frame(audio: np.ndarray, around: int, reach: int) -> int:
    """Start of the lowest-energy VAD frame within `reach` samples of `around`."""
    lo = max(0, around - reach)
    span = audio[lo:around + reach]
    frames = span[:span.size // VAD_FRAME * VAD_FRAME].reshape(-1, VAD_FRAME)
    if not frames.size:
        return around
    energy = np.square(frames, dtype=np.float32).sum(axis=1)
    return lo + int(np.argmin(energy)) * VAD_FRAME


def speech_regions(audio: np.ndarray, vad_options: VadOptions, block_seconds: float | None = None) -> list[dict]:
    """Silero VAD's speech regions ({"start", "end"} in samples) of int16 or float32 audio, one block
    at a time: only a block is ever converted to float32. Media up to one block long (by default
    `WHOLE_FILE_VAD_SECONDS`) gets exactly `get_speech_timestamps` of the whole; longer media is cut
    at pauses (a block of `VAD_BLOCK_SECONDS` each), and a region that touches a cut joins its
    neighbour across it when together they still fit one window."""
    if block_seconds is None:
        block_seconds = WHOLE_FILE_VAD_SECONDS if audio.size <= WHOLE_FILE_VAD_SECONDS * SAMPLE_RATE \
            else VAD_BLOCK_SECONDS
    block = int(block_seconds * SAMPLE_RATE)
    edges = [0]
    while audio.size - edges[-1] > block:
        edges.append(quietest_frame(audio, edges[-1] + block, int(VAD_EDGE_SEARCH_SECONDS * SAMPLE_RATE)))
    edges.append(audio.size)
    max_samples = vad_options.max_speech_duration_s * SAMPLE_RATE
    regions: list[dict] = []
    for start, end in zip(edges, edges[1:]):
        for region in get_speech_timestamps(to_float32(audio[start:end]), vad_options):
            region = {"start": region["start"] + start, "end": region["end"] + start}
            if (regions and regions[-1]["end"] == start == region["start"]
                    and region["end"] - regions[-1]["start"] <= max_samples):
                regions[-1]["end"] = region["end"]
            else:
                regions.append(region)
    return regions


@dataclass
class Chunk:
    """One decoding window: VAD regions packed end to end, as faster-whisper's `collect_chunks` does."""

    offset: float  # seconds on the speech-only timeline (regions concatenated)
    duration: float  # seconds of speech in the window
    regions: list[dict] = field(default_factory=list)  # {"start", "end"} in samples of the original audio

    def audio(self, audio: np.ndarray) -> np.ndarray:
        """The window's float32 samples, cut from int16 or float32 audio."""
        return to_float32(np.concatenate([audio[r["start"]:r["end"]] for r in self.regions])) if self.regions \
            else np.zeros(0, dtype=np.float32)

    def metadata(self) -> dict:
        return {"offset": self.offset, "duration": self.duration, "segments": self.regions}


def pack_regions(regions: list[dict], max_seconds: float = CHUNK_SECONDS) -> list[Chunk]:
    """Greedy packing of speech regions into windows, the same windows as `collect_chunks` but
    without copying any audio."""
    chunks: list[Chunk] = []
    current: list[dict] = []
    current_samples = total_samples = 0
    for region in regions:
        length = region["end"] - region["start"]
        if current and current_samples + length > max_seconds * SAMPLE_RATE:
            chunks.append(Chunk(total_samples / SAMPLE_RATE, current_samples / SAMPLE_RATE, current))
            total_samples += current_samples
            current, current_samples = [], 0
        current.append(region)
        current_samples += length
    if current:
        chunks.append(Chunk(total_samples / SAMPLE_RATE, current_samples / SAMPLE_RATE, current))
    return chunks


@dataclass
class Batch:
    """What one decoded batch gives: segments on the original timeline, and English segments when
    translation was asked for. `reached` is the end (seconds) of the last region decoded so far."""

    segments: list[Segment]
    english: list[Segment]
    reached: float


# A window's speech left without words for this long (seconds on the speech-only timeline, where
# VAD has cut out the pauses) is decoded again: at the window's start or end 1 s, between two words
# 1.5 s (a breath inside a VAD region can last a second). Chosen on the real-speech continuous file
# (README, "Sentences on continuous speech"); each retry is one more window in the batch.
UNCOVERED_EDGE_SECONDS = 1.0
UNCOVERED_INNER_SECONDS = 1.5
REDECODE_DEPTH = 2  # a retried piece may itself be retried once; no window costs more than that
FRAMES_PER_SECOND = 100  # log-mel frames


def uncovered_from(output: list[dict], metadata: dict) -> tuple[float, int] | None:
    """Where the first long stretch of a window's speech without words begins (seconds into the
    window) and how many of its segments end before it, or None when the words cover the speech. A
    window that gave no text at all is left alone: Whisper heard no speech in it (music, noise)."""
    covered, offset = 0.0, metadata["offset"]
    for n, segment in enumerate(output):
        for word in segment.get("words") or [segment]:  # without word timestamps, the segment's span
            limit = UNCOVERED_INNER_SECONDS if covered > 0 else UNCOVERED_EDGE_SECONDS
            if word["start"] - offset - covered >= limit:
                return covered, n
            covered = max(covered, word["end"] - offset)
    if output and metadata["duration"] - covered >= UNCOVERED_EDGE_SECONDS:
        return covered, len(output)
    return None


def sub_metadata(metadata: dict, start: float, end: float) -> dict:
    """Chunk metadata of the part of a window between `start` and `end` seconds into it."""
    regions, at = [], 0.0
    for region in metadata["segments"]:
        length = (region["end"] - region["start"]) / SAMPLE_RATE
        low, high = max(start, at), min(end, at + length)
        if high > low:
            regions.append({"start": region["start"] + int((low - at) * SAMPLE_RATE),
                            "end": region["start"] + int((high - at) * SAMPLE_RATE)})
        at += length
    return {"offset": metadata["offset"] + start, "duration": end - start, "segments": regions}


def redecode_parts(metadata: dict, uncovered: float) -> list[tuple[float, float]]:
    """What to decode again: from the uncovered point to the window's end; when nothing before it is
    covered (decoding the same features again would give the same words), the window in two halves
    cut where two VAD regions meet, nearest the middle."""
    if uncovered >= 0.5:
        return [(uncovered, metadata["duration"])]
    joins, at = [], 0.0
    for region in metadata["segments"][:-1]:
        at += (region["end"] - region["start"]) / SAMPLE_RATE
        joins.append(at)
    if not joins:
        return []
    middle = min(joins, key=lambda t: abs(t - metadata["duration"] / 2))
    return [(0.0, middle), (middle, metadata["duration"])]


class LazyBatchedPipeline(BatchedInferencePipeline):
    """`BatchedInferencePipeline` that featurises one batch at a time, decodes again what a window
    left out, and can translate on the same encoder output."""

    def forward(self, features, tokenizer, chunks_metadata, options, depth: int = 0):
        outputs = super().forward(features, tokenizer, chunks_metadata, options)
        if depth >= REDECODE_DEPTH:
            return outputs
        encoder_output = self._encoder_output  # the English pass reads the windows' own
        jobs = []  # (window, segments kept, [(start, end) seconds into it])
        for k, (metadata, output) in enumerate(zip(chunks_metadata, outputs)):
            found = uncovered_from(output, metadata)
            parts = redecode_parts(metadata, found[0]) if found else []
            if parts:
                jobs.append((k, found[1], parts))
        if jobs:
            pieces = [(k, a, b) for k, _, parts in jobs for a, b in parts]
            again = np.stack([pad_or_trim(features[k][:, int(a * FRAMES_PER_SECOND):int(b * FRAMES_PER_SECOND)])
                              for k, a, b in pieces])
            metadata = [sub_metadata(chunks_metadata[k], a, b) for k, a, b in pieces]
            redone = iter(self.forward(again, tokenizer, metadata, options, depth + 1))
            for k, kept, parts in jobs:
                outputs[k] = outputs[k][:kept] + [s for _ in parts for s in next(redone)]
            self._encoder_output = encoder_output
        return outputs

    def generate_segment_batched(self, features, tokenizer, options):
        encoder_output, output = super().generate_segment_batched(features, tokenizer, options)
        self._encoder_output = encoder_output  # kept for the translate pass of this batch
        return encoder_output, output

    def english_segments(self, chunks: list[Chunk], tokenizer: Tokenizer, options: TranscriptionOptions,
                         chinese_tokens: int) -> list[Segment]:
        """Whisper's translate task on the current batch's encoder output, with timestamps so that
        each English segment can be placed on the timeline. `chinese_tokens`, the longest
        transcription of these windows in tokens, bounds the English: a window that loops would
        otherwise keep the whole batch decoding up to Whisper's 448 tokens."""
        model = self.model
        prompt = model.get_prompt(tokenizer, [], without_timestamps=False)
        max_length = min(model.max_length, len(prompt) + int(ENGLISH_TOKENS_PER_CHINESE * chinese_tokens) + 32)
        results = model.model.generate(
            self._encoder_output, [list(prompt) for _ in chunks], beam_size=options.beam_size,
            patience=options.patience, length_penalty=options.length_penalty, max_length=max_length,
            suppress_blank=options.suppress_blank, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            return_scores=True, return_no_speech_prob=True, sampling_temperature=0.0,
            max_initial_timestamp_index=0,
        )
        segments = []
        for chunk, result in zip(chunks, results):
            pieces, _, _ = model._split_segments_by_timestamps(
                tokenizer=tokenizer, tokens=result.sequences_ids[0], time_offset=chunk.offset,
                segment_size=int(ceil(chunk.duration) * model.frames_per_second),
                segment_duration=chunk.duration, seek=0,
            )
            for piece in pieces:
                text = tokenizer.decode(piece["tokens"])
                if text.strip():
                    segments.append(Segment(
                        id=len(segments), seek=0, start=piece["start"], end=piece["end"], text=text,
                        tokens=piece["tokens"], avg_logprob=0.0, compression_ratio=get_compression_ratio(text),
                        no_speech_prob=result.no_speech_prob, words=None, temperature=0.0))
        return segments


def split_for_workers(batch: list, workers: int) -> list[list]:
    """A batch in `workers` contiguous parts (the last ones may be empty), one per CTranslate2 worker."""
    size = ceil(len(batch) / workers)
    return [batch[j * size:(j + 1) * size] for j in range(workers)]


def _options(tokenizer: Tokenizer, beam_size: int, initial_prompt: str | None, word_timestamps: bool) -> TranscriptionOptions:
    """The options the stock batched `transcribe` builds for its defaults, but with timestamp tokens
    (`without_timestamps=False`): segments end where Whisper hears a sentence or clause end."""
    return TranscriptionOptions(
        beam_size=beam_size, best_of=5, patience=1, length_penalty=1, repetition_penalty=1,
        no_repeat_ngram_size=0, log_prob_threshold=-1.0, no_speech_threshold=0.6,
        compression_ratio_threshold=2.4, temperatures=[0.0], initial_prompt=initial_prompt, prefix=None,
        suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        prepend_punctuations="\"'“¿([{-", append_punctuations="\"'.。,，!！?？:：”)]}、",
        max_new_tokens=None, hotwords=None, word_timestamps=word_timestamps,
        hallucination_silence_threshold=None, condition_on_previous_text=False, clip_timestamps=[],
        prompt_reset_on_temperature=0.5, multilingual=False, without_timestamps=False,
        max_initial_timestamp=0.0,
    )


def _features(model: WhisperModel, audio: np.ndarray, chunks: list[Chunk]) -> np.ndarray:
    return np.stack([pad_or_trim(model.feature_extractor(c.audio(audio))[..., :-1]) for c in chunks])


def decode_batched(model: WhisperModel, audio: np.ndarray, *, language: str | None, beam_size: int = 5,
                   batch_size: int = DEFAULT_BATCH_SIZE, initial_prompt: str | None = None,
                   word_timestamps: bool = True, translate: bool = False,
                   vad_options: VadOptions | None = None) -> tuple[str, Iterator[Batch]]:
    """VAD, then decode the windows batch by batch (`audio`: 16 kHz mono, int16 or float32). Returns
    the language (detected on the first window when `language` is None) and a lazy iterator of
    batches; no speech → no batches."""
    regions = speech_regions(audio, vad_options or default_vad_options())
    chunks = pack_regions(regions)
    if language is None:
        if chunks and model.model.is_multilingual:
            language, _, _ = model.detect_language(features=_features(model, audio, chunks[:1])[0])
        else:
            language = "zh" if model.model.is_multilingual else "en"
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    english_tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="translate",
                                  language=language)
    options = _options(tokenizer, beam_size, initial_prompt, word_timestamps)
    # One pipeline per CTranslate2 worker (app.speech.model loads CPU models with two single-threaded
    # workers): each batch is split in contiguous parts decoded at the same time.
    pipelines = [LazyBatchedPipeline(model) for _ in range(max(1, model.model.num_workers))]

    def decode_part(pipeline: LazyBatchedPipeline, part: list[Chunk]) -> tuple[list[Segment], list[Segment]]:
        if not part:
            return [], []
        # Word timing's "first word after a pause" rule looks back to the last speech before this
        # decoding; the part starts where the windows before it ended on the speech-only timeline.
        pipeline.last_speech_timestamp = part[0].offset
        features = _features(model, audio, part)
        outputs = pipeline.forward(features, tokenizer, [c.metadata() for c in part], options)
        segments = [Segment(seek=s["seek"], id=0, text=s["text"], start=round(s["start"], 3),
                            end=round(s["end"], 3), words=_words(s) if word_timestamps else None,
                            tokens=s["tokens"], avg_logprob=s["avg_logprob"],
                            no_speech_prob=s["no_speech_prob"], compression_ratio=s["compression_ratio"],
                            temperature=0.0)
                    for output in outputs for s in output]
        longest = max((sum(len(s["tokens"]) for s in output) for output in outputs), default=0)
        english = pipeline.english_segments(part, english_tokenizer, options, longest) if translate else []
        del pipeline._encoder_output
        return segments, english

    def batches() -> Iterator[Batch]:
        with ThreadPoolExecutor(len(pipelines)) as pool:
            for i in range(0, len(chunks), batch_size):
                batch = chunks[i:i + batch_size]
                decoded = list(pool.map(decode_part, pipelines, split_for_workers(batch, len(pipelines))))
                segments = [s for part_segments, _ in decoded for s in part_segments]
                english = [s for _, part_english in decoded for s in part_english]
                yield Batch(segments=list(restore_speech_timestamps(segments, regions, SAMPLE_RATE)),
                            english=list(restore_speech_timestamps(english, regions, SAMPLE_RATE)),
                            reached=batch[-1].regions[-1]["end"] / SAMPLE_RATE)

    return language, batches()


def _words(segment: dict) -> list:
    from faster_whisper.transcribe import Word

    return [Word(**word) for word in segment.get("words", [])]


RETRY_GAP_SECONDS = 1.0  # silence between packed retry spans: Whisper's timestamps fall in the gaps


@dataclass
class PackedSpans:
    """Retry spans laid end to end in one window, a second of silence between them."""

    audio: np.ndarray
    places: list[tuple[int, float, float]]  # (index of the span, start s, end s) inside the window
    chars: int  # Chinese characters in the window's spans, to bound the English


def pack_spans(audio: np.ndarray, spans: list[tuple[float, float, int]]) -> list[PackedSpans]:
    """Greedy packing of (start s, end s, Chinese characters) spans into ≤ 30-s windows: the encoder
    costs the same for 3 s of audio as for 30, so five sentences share one window."""
    gap = np.zeros(int(RETRY_GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    windows: list[PackedSpans] = []
    pieces: list[np.ndarray] = []
    places: list[tuple[int, float, float]] = []
    at = chars = 0
    for index, (start, end, n) in enumerate(spans):
        clip = to_float32(audio[max(0, int(start * SAMPLE_RATE)):int(end * SAMPLE_RATE)][:CHUNK_SECONDS * SAMPLE_RATE])
        length = clip.size / SAMPLE_RATE
        if pieces and at + RETRY_GAP_SECONDS + length > CHUNK_SECONDS:
            windows.append(PackedSpans(np.concatenate(pieces), places, chars))
            pieces, places, at, chars = [], [], 0, 0
        if pieces:
            pieces.append(gap)
            at += RETRY_GAP_SECONDS
        pieces.append(clip)
        places.append((index, at, at + length))
        at += length
        chars += n
    if pieces:
        windows.append(PackedSpans(np.concatenate(pieces), places, chars))
    return windows


def translate_spans(model: WhisperModel, audio: np.ndarray, spans: list[tuple[float, float, int]],
                    language: str, beam_size: int = 5, batch_size: int = DEFAULT_BATCH_SIZE) -> list[str]:
    """Whisper's English for each (start s, end s, Chinese characters) span: the retry for sentences
    the window pass left without usable English. Spans are packed into windows (`pack_spans`) and
    decoded with timestamps; each English segment goes to the span it overlaps most. Batches are
    split over the CTranslate2 workers like `decode_batched`."""
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="translate", language=language)
    prompt = model.get_prompt(tokenizer, [], without_timestamps=False)
    suppress = get_suppressed_tokens(tokenizer, [-1])
    texts: list[list[str]] = [[] for _ in spans]

    def decode(part: list[PackedSpans]) -> None:
        if not part:
            return
        features = np.stack([pad_or_trim(model.feature_extractor(w.audio)[..., :-1]) for w in part])
        longest = max(3 * w.chars + 4 * len(w.places) for w in part)
        results = model.model.generate(
            model.encode(features), [list(prompt) for _ in part], beam_size=beam_size, suppress_blank=True,
            suppress_tokens=suppress, max_length=min(model.max_length, len(prompt) + longest + 16),
            max_initial_timestamp_index=50)
        for window, result in zip(part, results):
            duration = window.audio.size / SAMPLE_RATE
            pieces, _, _ = model._split_segments_by_timestamps(
                tokenizer=tokenizer, tokens=result.sequences_ids[0], time_offset=0.0,
                segment_size=int(ceil(duration) * model.frames_per_second), segment_duration=duration, seek=0)
            for piece in pieces:
                text = tokenizer.decode(piece["tokens"]).strip()
                if text:
                    overlap = [min(piece["end"], b) - max(piece["start"], a) for _, a, b in window.places]
                    texts[window.places[int(np.argmax(overlap))][0]].append(text)

    windows = pack_spans(audio, spans)
    workers = max(1, model.model.num_workers)
    with ThreadPoolExecutor(workers) as pool:
        for i in range(0, len(windows), batch_size):
            list(pool.map(decode, split_for_workers(windows[i:i + batch_size], workers)))
    return [" ".join(t) for t in texts]
