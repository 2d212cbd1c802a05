"""featurize's shards → Whisper training examples: featurize.reader plus what training adds.

featurize.reader owns reading: `load_split` gives a memory-mapped `datasets.Dataset` whose rows
are computed when read (Opus decoded + log-mel, or stored float16 log-mel padded), so with
`--dataloader-num-workers N` that work runs in N worker processes while the GPU trains; its
`WhisperCollator` stacks and pads like the HF recipe. The dataset is map-style, which lets
Trainer resume mid-epoch by skipping sampler indices instead of re-reading the skipped audio.

Added here:
  * timestamps — the app's subtitles need segment timestamps from the exported model, and a
    model fine-tuned only on <|notimestamps|> labels forgets how to emit them. A share
    (`timestamp_fraction`) of the training rows, chosen by a hash of the row id (the same rows on
    every rerun, worker and rank), gets the timestamped form <|0.00|> text <|end|> of the clip
    (or, where featurize timed its sentences, <|start|> sentence <|end|> per sentence: `timed_labels`),
    the rest the plain form; evaluation rows stay plain, like evaluation decoding;
  * decoder_input_ids in the batch, so label smoothing (which hides the labels from the model) works.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

_KEEP = ("id", "duration", "timed_labels")  # shard columns the label forms need besides input_features and labels


def load_split(features_dir: str | Path, split: str):
    """A split of a finished featurize folder: rows {"input_features", "labels", "id", "duration"}."""
    from featurize.reader import load_split as load_shards

    return load_shards(features_dir, split, keep=_KEEP)


@dataclass(frozen=True)
class LabelForms:
    """Switch label ids between the plain and the timestamped form (featurize.labels' layout, ids from
    the model's tokenizer)."""

    eot: int  # <|endoftext|>: eos, and where the special tokens begin
    no_timestamps: int  # <|notimestamps|>; the first timestamp <|0.00|> is the next id

    @classmethod
    def from_tokenizer(cls, tokenizer) -> LabelForms:
        ids = tokenizer.convert_tokens_to_ids
        return cls(ids("<|endoftext|>"), ids("<|notimestamps|>"))

    def split(self, ids: list[int]) -> tuple[list[int], list[int]]:
        """(special prefix without <|notimestamps|>, text ids without timestamps or <|endoftext|>)."""
        k = 0
        while k < len(ids) and self.eot < ids[k] <= self.no_timestamps:
            k += 1
        prefix = [t for t in ids[:k] if t != self.no_timestamps]
        body = [t for t in ids[k:] if t < self.eot]
        return prefix, body

    def plain(self, ids: list[int]) -> list[int]:
        prefix, body = self.split(ids)
        return [*prefix, self.no_timestamps, *body, self.eot]

    def timestamped(self, ids: list[int], duration: float) -> list[int]:
        from featurize.labels import timestamped

        prefix, body = self.split(ids)
        return timestamped(prefix, body, duration, self.no_timestamps + 1, self.eot)


def _uniform(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key): which rows get timestamps, identical on every worker."""
    return zlib.crc32(f"{seed}|{key}".encode()) / 2**32


class WhisperExamples(torch.utils.data.Dataset):
    """featurize rows → {"input_features": float32 (n_mels, 3000), "labels": ids in the chosen form}."""

    def __init__(self, rows, label_forms: LabelForms, timestamp_fraction: float = 0.0, seed: int = 0):
        self.rows = rows
        self.label_forms = label_forms
        self.timestamp_fraction = timestamp_fraction
        self.seed = seed

    def __len__(self) -> int:
        return len(self.rows)

    def labels(self, row: dict) -> list[int]:
        ids = list(row["labels"])
        if self.timestamp_fraction > 0 and _uniform(self.seed, row["id"]) < self.timestamp_fraction:
            if row.get("timed_labels"):
                return list(row["timed_labels"])
            return self.label_forms.timestamped(ids, float(row["duration"]))
        return self.label_forms.plain(ids)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[int(index)]
        return {"input_features": row["input_features"], "labels": self.labels(row)}


class CachedEncoderExamples(WhisperExamples):
    """Rows whose encoder output was computed once (training.encoder_cache): {"encoder_outputs",
    "labels"}, or {"encoder_layer_input", "labels"} when the cache holds an encoder layer's input.
    Only the label columns are read from the shards; no audio is decoded."""

    def __init__(self, rows, outputs, label_forms: LabelForms, timestamp_fraction: float = 0.0, seed: int = 0,
                 indices: list[int] | None = None):
        labels_only = rows.with_format(None).select_columns([c for c in ("id", "duration", "labels", "timed_labels")
                                                             if c in rows.column_names])
        if list(labels_only["id"]) != outputs.ids[: len(labels_only)]:
            raise SystemExit("error: the encoder-output cache does not belong to these shards: delete it and rerun")
        super().__init__(labels_only, label_forms, timestamp_fraction, seed)
        self.outputs = outputs
        self.indices = list(range(len(labels_only))) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        i = self.indices[int(index)]
        key = "encoder_outputs" if self.outputs.layer is None else "encoder_layer_input"
        return {key: self.outputs[i], "labels": self.labels(self.rows[i])}


def seeded_subset(size: int, share: float, seed: int) -> list[int]:
    """A seeded random share of range(size), in order: data-size experiments on shards sorted by level."""
    import random

    count = max(1, round(size * share))
    return sorted(random.Random(seed).sample(range(size), count))


@dataclass
class WhisperCollator:
    """featurize.reader.WhisperCollator (stack, pad labels with -100, drop the leading
    <|startoftranscript|> the model prepends itself) + decoder_input_ids: the labels shifted right
    behind decoder_start_token_id, exactly what the model would build from them. Cached encoder
    outputs go to the model as `encoder_outputs`, which makes it skip its encoder; a cached encoder
    layer input goes as `encoder_outputs=EncoderLayerInput(...)` (training.model.WhisperFromEncoderLayer)."""

    decoder_start_token_id: int
    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        from transformers.models.whisper.modeling_whisper import shift_tokens_right

        from featurize.reader import WhisperCollator as ShardCollator
        from featurize.reader import pad_labels

        cached = next((k for k in ("encoder_outputs", "encoder_layer_input") if k in examples[0]), None)
        if cached:
            from transformers.modeling_outputs import BaseModelOutput

            from training.model import EncoderLayerInput

            hidden = torch.stack([e[cached] for e in examples])
            labels = torch.from_numpy(pad_labels([e["labels"] for e in examples], self.decoder_start_token_id))
            wrap = BaseModelOutput if cached == "encoder_outputs" else EncoderLayerInput
            batch = {"encoder_outputs": wrap(last_hidden_state=hidden), "labels": labels}
        else:
            batch = ShardCollator(self.decoder_start_token_id)(examples)
        batch["decoder_input_ids"] = shift_tokens_right(batch["labels"], self.pad_token_id,
                                                        self.decoder_start_token_id)
        return batch
