"""Training side: shards -> what a Whisper Seq2SeqTrainer batch needs.

    from featurize.reader import load_split, WhisperCollator
    train = load_split("out/zh-synth", "train")          # datasets.Dataset, decoded lazily
    train[0]["input_features"].shape                     # (80, 3000) float32 log-mel
    train[0]["labels"]                                   # [50258, 50260, 50359, 50363, ..., 50257]
    collator = WhisperCollator()                         # HF recipe's DataCollatorSpeechSeq2SeqWithPadding
    batch = collator([train[i] for i in range(8)])       # input_features (8, 80, 3000), labels padded with -100

`input_features` are computed when a row is read (datasets' with_transform), never stored padded:
--store audio rows are decoded and run through WhisperFeatureExtractor (built from the config in
manifest.json, so it matches the model the labels were made for); --store logmel rows are
unpacked and padded to 3000 frames exactly as the extractor pads. In a DataLoader worker the
transform sets torch.set_num_threads(1): one clip's STFT is too small for torch's thread pool to pay
off, and N workers with a pool each would fight over the cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featurize import audio_codec, features, manifest


def feature_extractor_for(out: str | Path):
    """The WhisperFeatureExtractor the shards were made for (80 mels for whisper-base)."""
    from transformers import WhisperFeatureExtractor

    config = dict(manifest.read(out)["feature_extractor"])
    config.pop("feature_extractor_type", None)
    return WhisperFeatureExtractor(**config)


class WhisperInputs:
    """datasets transform: a batch of stored rows -> {"input_features", "labels"}."""

    def __init__(self, extractor, keep: tuple[str, ...] = ()):
        self.extractor = extractor
        self.keep = keep

    def features_of(self, row: dict) -> np.ndarray:
        if row.get("log_mel") is not None:
            mel = np.frombuffer(row["log_mel"], dtype="<f2").reshape(self.extractor.feature_size, row["num_frames"])
        else:
            audio = audio_codec.decode(row["audio"]["bytes"])
            mel = features.unpadded_log_mel(audio, self.extractor, dtype=np.float32)
        return features.pad_log_mel(mel, self.extractor.nb_max_frames)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        _one_thread_in_workers()
        names = list(batch)
        rows = [dict(zip(names, values)) for values in zip(*batch.values())]
        out = {"input_features": [self.features_of(r) for r in rows], "labels": batch["labels"]}
        for name in self.keep:
            if name in batch:  # a column older shards lack (timed_labels) is simply not there
                out[name] = batch[name]
        return out


def _one_thread_in_workers() -> None:
    import torch

    if torch.utils.data.get_worker_info() is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def split_files(out: str | Path, split: str) -> list[str]:
    out = Path(out)
    splits = manifest.read(out)["splits"]
    if split not in splits:
        raise KeyError(f"no split {split!r} in {out} (splits: {', '.join(splits)})")
    return [str(out / f) for f in splits[split]["files"]]


def load_split(out: str | Path, split: str = "train", streaming: bool = False, keep: tuple[str, ...] = (),
               cache_dir: str | None = None):
    """A finished featurize folder's split as a datasets.Dataset (or IterableDataset when streaming)
    whose rows are {"input_features": float32 (n_mels, 3000), "labels": list[int]} (+ `keep` columns)."""
    import datasets

    dataset = datasets.load_dataset("parquet", data_files={split: split_files(out, split)}, split=split,
                                    streaming=streaming, cache_dir=cache_dir)
    transform = WhisperInputs(feature_extractor_for(out), keep)
    if streaming:
        return dataset.map(transform, batched=True, batch_size=16, remove_columns=dataset.column_names)
    return dataset.with_transform(transform)


@dataclass
class WhisperCollator:
    """Batch rows for WhisperForConditionalGeneration, like the HF recipe's
    DataCollatorSpeechSeq2SeqWithPadding: stack features, pad labels with -100 (ignored by the
    loss) and drop the leading <|startoftranscript|>, which the model prepends itself."""

    decoder_start_token_id: int = 50258

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        input_features = np.stack([np.asarray(r["input_features"], dtype=np.float32) for r in rows])
        labels = pad_labels([r["labels"] for r in rows], self.decoder_start_token_id)
        return {"input_features": torch.from_numpy(input_features), "labels": torch.from_numpy(labels)}


def pad_labels(label_lists: list[list[int]], decoder_start_token_id: int) -> np.ndarray:
    """Label ids padded with -100 (ignored by the loss) into one int64 array, without the leading
    <|startoftranscript|> when every row has it (the model prepends it itself)."""
    width = max(len(ids) for ids in label_lists)
    labels = np.full((len(label_lists), width), -100, dtype=np.int64)
    for i, ids in enumerate(label_lists):
        labels[i, : len(ids)] = ids
    if (labels[:, 0] == decoder_start_token_id).all():
        labels = labels[:, 1:]
    return labels
