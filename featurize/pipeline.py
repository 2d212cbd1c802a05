"""One shard's work: clips of one source slice -> filtered, labelled, stored rows -> one Parquet file.

Per clip, in this order (the first reason that applies is the one counted):
  refusal     a table row with extra/missing fields, a path outside the dataset folder, not a
              regular file, over --max-file-mb   -> dropped: sources.REFUSALS (once per row)
  weight      drop copies by the source's @WEIGHT (counted as sampled_out, not as dropped)
  text        app.language.text.normalize_label; nothing left          -> dropped: empty_sentence
  labels      Whisper ids over the decoder's 448 positions     -> dropped: label_too_long
              ids not decoding back to the text               -> dropped: label_mismatch
              (and, when the table has a `timing` column, the clip timed sentence by sentence)
  audio       decode + resample to 16 kHz mono; failure        -> dropped: decode_failed (logged with path)
  augment     training splits only, per copy (speed, noise)
  duration    over --max-duration-in-seconds (30 s)            -> dropped: audio_too_long
  store       compressed audio, or float16 log-mel without padding
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from app.speech.audio import SAMPLE_RATE
from featurize import audio_codec, features, labels, shards
from featurize.augment import AugmentOptions, augment, rng_for
from featurize.sources import DEFAULT_MAX_FILE_MB, REFUSALS, Refused, Unit, copies

log = logging.getLogger("featurize")

FORMAT = "zimu-featurize/2"  # bump when the row format changes: old shards then stop matching
DROP_REASONS = (*REFUSALS, "empty_sentence", "label_too_long", "label_mismatch", "decode_failed", "audio_too_long")
MAX_FAILED_LISTED = 50  # per shard: decode failures in `failed`, and clip names per drop reason


@dataclass(frozen=True)
class Settings:
    """Everything that decides which rows a shard holds, byte for byte (the resume fingerprint)."""

    store: str = "audio"  # "audio" | "logmel"
    audio_codec: str = "opus"  # "opus" | "flac" | "original"
    opus_bitrate: int = 16000
    model: str | None = None  # tokenizer/feature-extractor source; None = embedded whisper-base
    tokenizer: str = ""  # labels.tokenizer_fingerprint(model)
    language: str = "zh"
    task: str = "transcribe"
    timestamps: bool = False
    max_duration: float = 30.0
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    augment_splits: tuple[str, ...] = ("train",)
    seed: int = 0
    clips_per_shard: int = 1000
    streaming: bool = False
    sources: tuple = ()  # SourceSpec.describe() of every source, in order
    allow_outside_paths: bool = False  # read table paths outside the dataset folder
    max_file_bytes: int = int(DEFAULT_MAX_FILE_MB * 1e6)  # larger files (and non-regular ones) are refused

    def fingerprint(self) -> str:
        blob = json.dumps([FORMAT, asdict(self)], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class _Tally:
    """One shard's counts: clips read, left out by weight, dropped by reason (with the first clips
    named), decode failures, seconds of audio kept."""

    clips_read: int = 0
    sampled_out: int = 0
    seconds: float = 0.0
    dropped: Counter = field(default_factory=Counter)
    named: dict[str, list[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def drop(self, name: str, reason: str, count: int, detail: str = "") -> None:
        self.dropped[reason] += count
        listed = self.named.setdefault(reason, [])
        if len(listed) < MAX_FAILED_LISTED:
            listed.append(f"{name}: {detail}" if detail else name)

    def stats(self, kept: int) -> dict:
        return {
            "clips_read": self.clips_read,
            "sampled_out": self.sampled_out,
            "kept": kept,
            "dropped": {r: self.dropped[r] for r in DROP_REASONS if self.dropped[r]},
            "dropped_clips": {r: self.named[r] for r in DROP_REASONS if r in self.named},
            "audio_seconds": round(self.seconds, 3),
            "failed": self.failed,
        }


class Featurizer:
    """Holds what every shard of a run shares (tokenizer, feature extractor); one per process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.labels = labels.LabelMaker(labels.load_tokenizer(settings.model), settings.language,
                                        settings.task, settings.timestamps)
        self.extractor = features.load_feature_extractor(settings.model)
        self.schema = shards.schema(settings.store)
        self.fingerprint = settings.fingerprint()

    def write_shard(self, unit: Unit, path: Path, progress=lambda n: None) -> dict:
        """Featurise `unit` into `path` (atomically); returns the shard's stats."""
        started = time.perf_counter()
        tally = _Tally()
        rows: dict[str, list] = {name: [] for name in self.schema.names}
        for clip in unit.clips():
            tally.clips_read += 1
            progress(1)
            labelled = self._labelled(unit, clip, tally)
            if labelled is None:
                continue
            text, ids, n = labelled
            decoded = self._decoded(clip, tally, n)
            if decoded is not None:
                self._add_copies(rows, unit, clip, text, ids, n, *decoded, tally)
        stats = {"fingerprint": self.fingerprint, "split": unit.split, "source": unit.source.written,
                 **tally.stats(kept=len(rows["id"])), "elapsed_s": round(time.perf_counter() - started, 3)}
        shards.write_shard(path, rows, self.schema, stats)
        return shards.read_stats(path)

    def _labelled(self, unit: Unit, clip, tally: _Tally) -> tuple[str, list[int], int] | None:
        """(label text, label ids, copies to make) of a clip that may be read, else None (counted)."""
        try:
            clip.check(self.settings.max_file_bytes)
        except Refused as exc:
            log.warning("refused %s: %s: %s", clip.name, exc.reason, exc.detail)
            tally.drop(clip.name, exc.reason, 1, exc.detail)
            return None
        n = copies(unit.source.weight, self.settings.seed, unit.source, unit.split, clip.key)
        if n == 0:
            tally.sampled_out += 1
            return None
        text = self.labels.text(clip.sentence)
        if not text:
            tally.drop(clip.name, "empty_sentence", n)
            return None
        ids = self.labels.ids(text, 0.0)
        if len(ids) > labels.DECODER_MAX_TOKENS:
            tally.drop(clip.name, "label_too_long", n)
            return None
        if not self.labels.decodes_back(ids, text):
            log.warning("skipped %s: label ids do not decode back to %r", clip.name, text)
            tally.drop(clip.name, "label_mismatch", n)
            return None
        return text, ids, n

    def _decoded(self, clip, tally: _Tally, n: int) -> tuple[bytes, np.ndarray] | None:
        """(the file's bytes, its 16 kHz mono samples), else None (counted)."""
        try:
            original = clip.read_audio(self.settings.max_file_bytes)
            return original, audio_codec.decode(original)
        except Refused as exc:  # the file changed since clip.check
            log.warning("refused %s: %s: %s", clip.name, exc.reason, exc.detail)
            tally.drop(clip.name, exc.reason, 1, exc.detail)
        except (OSError, audio_codec.DecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            log.warning("skipped %s: cannot decode (%s)", clip.name, reason)
            tally.drop(clip.name, "decode_failed", n, reason)
            if len(tally.failed) < MAX_FAILED_LISTED:
                tally.failed.append(f"{clip.name}: {reason}")
        return None

    def _add_copies(self, rows: dict[str, list], unit: Unit, clip, text: str, ids: list[int], n: int,
                    original: bytes, audio: np.ndarray, tally: _Tally) -> None:
        """The clip's n rows (each training-split copy augmented on its own seed) that fit the duration."""
        s = self.settings
        augmenting = s.augment.active and unit.split in s.augment_splits
        for copy in range(n):
            note = ""
            clip_audio = audio
            if augmenting:
                rng = rng_for(s.seed, unit.source.written, unit.split, clip.key, copy)
                clip_audio, note = augment(audio, s.augment, rng)
            duration = clip_audio.size / SAMPLE_RATE
            if duration > s.max_duration:
                tally.drop(clip.name, "audio_too_long", 1, f"{duration:.1f} s")
                continue
            rows["id"].append(f"{clip.key}#{copy}")
            rows["source"].append(unit.source.written)
            rows["text"].append(text)
            rows["labels"].append(self.labels.ids(text, duration) if s.timestamps else ids)
            # Speed perturbation moves every sentence by the same factor as the clip's length.
            rows["timed_labels"].append(self.labels.timed_ids(clip.sentence, clip.timing, clip_audio.size / audio.size))
            rows["duration"].append(duration)
            rows["augment"].append(note)
            if s.store == "audio":
                rows["audio"].append({"bytes": self._stored_audio(clip_audio, original, changed=bool(note)),
                                      "path": Path(clip.path or clip.key).name})
            else:
                mel = features.unpadded_log_mel(clip_audio, self.extractor)
                rows["log_mel"].append(mel.astype("<f2").tobytes())
                rows["num_frames"].append(mel.shape[1])
            tally.seconds += duration

    def _stored_audio(self, audio: np.ndarray, original: bytes, changed: bool) -> bytes:
        s = self.settings
        if s.audio_codec == "original" and not changed:
            return original  # the corpus's own bytes: no encoding time, no second lossy generation
        codec = "opus" if s.audio_codec == "original" else s.audio_codec
        return audio_codec.encode(audio, codec, s.opus_bitrate)
