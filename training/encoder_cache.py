"""Frozen-encoder outputs computed once, kept on disk, reused by every epoch and every run.

With `--freeze-encoder` the encoder gives the same output for a clip in every epoch, and on a
CPU it is most of the cost of a step (whisper-base, 2 cores: ~0.55 s per 30-s window for the
encoder against ~0.1 s for the decoder's forward and backward). `--cache-encoder-outputs`
runs the encoder once per clip, stores its last hidden state as float16 in a memory-mapped
file, and trains the decoder on those: several epochs and several runs (learning rate, LoRA,
subsets of the data) then cost what one epoch of the decoder costs. SpecAugment and feature
augmentation on the fly cannot apply (the input is fixed); augment with featurize instead.

With `--train-encoder-top-layers N` the cache holds instead the hidden states *entering* encoder
layer L-N (L layers): the frozen bottom of the encoder still runs once per clip, and training runs
the top N layers, the final layer norm and the decoder (training.model.WhisperFromEncoderLayer).
A frozen acoustic model cannot learn to hear this data better; its top layers can.

Layout: CACHE/<split>-<key>/ (or <split>-layer<K>-<key> for layer K's input)/outputs.f16 (rows × frames × d_model) + rows.json (the row ids,
in order) + done.json once complete. The key hashes the encoder's weights, the input feature
configuration and the split's shard files, so another base model or another featurize run never
reads a stale cache. Writing is resumable: progress.json records the rows flushed so far, and a
rerun after a kill continues from there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from app.base.files import write_atomic

log = logging.getLogger(__name__)


def _feeds_layer(name: str, layer: int | None) -> bool:
    """Whether encoder weight `name` shapes the input of encoder layer `layer` (None: the output)."""
    if layer is None:
        return True
    if name.startswith("layers."):
        return int(name.split(".")[1]) < layer
    return not name.startswith("layer_norm.")  # convolutions and positions feed every layer


def cache_key(encoder, features_dir: str | Path, split: str, layer: int | None = None) -> str:
    """Hash of the encoder weights that produce the cached states (all of them for the output, those
    below `layer` for its input: a run that trained the top layers reuses the cache of their input),
    the feature configuration and the split's shard files."""
    from featurize import manifest
    from featurize.reader import split_files

    digest = hashlib.sha256()
    if getattr(encoder, "int8_aware", False):  # computed through int8 rounding (training.int8_aware)
        digest.update(b"int8")
    for name, tensor in sorted(encoder.state_dict().items()):
        if not _feeds_layer(name, layer):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).cpu().numpy().tobytes())
    info = manifest.read(features_dir)
    digest.update(json.dumps(info.get("feature_extractor", {}), sort_keys=True).encode())
    for path in split_files(features_dir, split):
        stat = os.stat(path)
        digest.update(f"{Path(path).name}:{stat.st_size}".encode())
    return digest.hexdigest()[:16]


def _write_json(path: Path, value) -> None:
    write_atomic(path, json.dumps(value))


def layer_input(encoder, input_features: torch.Tensor, layer: int | None = None) -> torch.Tensor:
    """The hidden states entering `encoder.layers[layer]` (eval mode); None: the encoder's final output.

    Mirrors WhisperEncoder.forward (convolutions, positions, the first `layer` layers) so that the
    layers above `layer` never run here: the cache of layer 3's input costs half the encoder."""
    if layer is None or layer >= len(encoder.layers):
        return encoder(input_features).last_hidden_state
    hidden = torch.nn.functional.gelu(encoder.conv1(input_features))
    hidden = torch.nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
    hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
    for block in encoder.layers[:layer]:
        hidden = block(hidden, None)
    return hidden


class EncoderOutputs:
    """Read side: `outputs[i]` is row i's cached hidden states as a float32 tensor (frames, d_model);
    `layer` is the encoder layer whose input they are (None: the encoder's final output)."""

    def __init__(self, folder: Path):
        done = json.loads((folder / "done.json").read_text(encoding="utf-8"))
        self.layer = done.get("layer")
        self.ids = json.loads((folder / "rows.json").read_text(encoding="utf-8"))
        self.array = np.memmap(folder / "outputs.f16", dtype=np.float16, mode="r", shape=tuple(done["shape"]))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self.array[index], dtype=np.float32))


def build(model, features_dir: str | Path, split: str, cache_dir: str | Path, batch_size: int = 8,
          layer: int | None = None) -> EncoderOutputs:
    """The split's encoder outputs (or the input of encoder layer `layer`), computed now for the
    rows that are not cached yet."""
    from app.base.progress import progress
    from training.data import load_split

    encoder = model.get_encoder()
    if layer is not None and layer >= len(encoder.layers):
        layer = None
    name = split if layer is None else f"{split}-layer{layer}"
    folder = Path(cache_dir) / f"{name}-{cache_key(encoder, features_dir, split, layer)}"
    if (folder / "done.json").is_file():
        log.info("encoder outputs of %s: cached in %s", split, folder)
        return EncoderOutputs(folder)
    rows = load_split(features_dir, split)
    ids = rows.with_format(None)["id"] if "id" in rows.column_names else [str(i) for i in range(len(rows))]
    frames = model.config.max_source_positions
    shape = (len(rows), frames, model.config.d_model)
    folder.mkdir(parents=True, exist_ok=True)
    progress_file = folder / "progress.json"
    start = json.loads(progress_file.read_text(encoding="utf-8"))["rows"] if progress_file.is_file() else 0
    _write_json(folder / "rows.json", list(ids))
    array = np.memmap(folder / "outputs.f16", dtype=np.float16, mode="r+" if start else "w+", shape=shape)
    device = next(encoder.parameters()).device
    dtype = next(encoder.parameters()).dtype
    encoder.eval()
    log.info("encoder outputs of %s: computing %d of %d rows into %s", split, len(rows) - start, len(rows), folder)
    bar = progress(total=len(rows), initial=start, desc=f"encoding {split}", unit="clip")
    with torch.inference_mode(), bar:
        for first in range(start, len(rows), batch_size):
            batch = rows[first: first + batch_size]["input_features"]
            features = torch.from_numpy(np.stack(batch)).to(device=device, dtype=dtype)
            hidden = layer_input(encoder, features, layer)
            array[first: first + len(batch)] = hidden.to(torch.float16).cpu().numpy()
            array.flush()
            _write_json(progress_file, {"rows": first + len(batch)})
            bar.update(len(batch))
    del array
    _write_json(folder / "done.json", {"shape": list(shape), "layer": layer})
    progress_file.unlink(missing_ok=True)
    return EncoderOutputs(folder)
