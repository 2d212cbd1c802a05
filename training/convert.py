"""CTranslate2 Whisper folder → transformers WhisperForConditionalGeneration + WhisperProcessor.

The app ships its Whisper base only as a CTranslate2 model (model.bin + config.json + tokenizer.json),
so with no Hub this is the one way to get a trainable base. The mapping is the exact inverse of
ctranslate2's own `converters/transformers.py` (WhisperLoader / BartLoader):

  * self-attention `linear_0` is q, k and v fused along the output rows → split in three
    (k_proj has no bias in transformers; the converter stored zeros there);
  * cross-attention `linear_0` is q, `linear_1` is k and v fused → split in two;
  * `linear_-1` is out_proj, ffn `linear_0/1` are fc1/fc2, layer norms keep their places;
  * `decoder/projection/weight` is an alias of the token embeddings (tied proj_out);
  * float16 / bfloat16 → float32, int8 / int16 weights are de-quantized with their `_scale`.

ctranslate2 has no Python accessor for a loaded model's weights and `ModelSpec` only serialises,
so `read_ct2_model_bin` mirrors the C++ reader (src/models/model.cc, `Model::load`).

    python -m training.convert [CT2_DIR] --out DIR     # default CT2_DIR: the app's embedded base
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
from pathlib import Path

import torch

# Order of ctranslate2's DataType enum (include/ctranslate2/types.h, model_spec._dtype_to_type_id).
_CT2_DTYPES = (torch.float32, torch.int8, torch.int16, torch.int32, torch.float16, torch.bfloat16)
# Binary versions before 4 stored an item size instead of a type id (the C++ reader's old logic).
_ITEM_SIZE_DTYPES = {4: torch.float32, 2: torch.int16, 1: torch.int8}
_SUPPORTED_BINARY_VERSION = 6
_SUPPORTED_WHISPER_REVISION = 3


class _Reader:
    def __init__(self, data: bytearray):
        self.data, self.offset = data, 0

    def unpack(self, fmt: str):
        value = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return value[0] if len(value) == 1 else value

    def string(self) -> str:
        length = self.unpack("H")  # includes the trailing NUL
        text = bytes(self.data[self.offset:self.offset + length - 1]).decode("utf-8")
        self.offset += length
        return text


def read_ct2_model_bin(path: str | Path) -> tuple[str, int, dict[str, torch.Tensor]]:
    """Return (spec name, spec revision, variables) of a CTranslate2 model.bin; aliases resolved.

    Tensors keep their stored dtype; scalars (num_heads, flags) come back as 0-d tensors.
    """
    data = bytearray(Path(path).read_bytes())
    reader = _Reader(data)
    version = reader.unpack("I")
    if version > _SUPPORTED_BINARY_VERSION:
        raise ValueError(f"{path}: CTranslate2 binary version {version} is newer than this reader knows")
    spec, revision = ("", 1) if version < 2 else (reader.string(), reader.unpack("I"))
    variables: dict[str, torch.Tensor] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        rank = reader.unpack("B")
        shape = [reader.unpack("I") for _ in range(rank)]
        if version >= 4:
            dtype = _CT2_DTYPES[reader.unpack("B")]
            num_bytes = reader.unpack("I")
        else:
            item_size = reader.unpack("B")
            dtype = _ITEM_SIZE_DTYPES[item_size]
            num_bytes = reader.unpack("I") * item_size
        count = num_bytes // torch.empty((), dtype=dtype).element_size()
        tensor = torch.frombuffer(data, dtype=dtype, count=count, offset=reader.offset) if count else \
            torch.empty(0, dtype=dtype)
        variables[name] = tensor.reshape(shape)
        reader.offset += num_bytes
    if version >= 3:
        for _ in range(reader.unpack("I")):
            alias, target = reader.string(), reader.string()
            variables[alias] = variables[target]
            if target + "_scale" in variables:  # the C++ reader aliases the quantisation scale too
                variables[alias + "_scale"] = variables[target + "_scale"]
    return spec, revision, variables


def _float(variables: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """A weight as float32, de-quantised when it was stored as int8/int16 with a scale."""
    value = variables[name]
    scale = variables.get(name + "_scale")
    if value.dtype in (torch.int8, torch.int16) and scale is not None:
        scale = scale.float()
        if scale.dim() == 1:  # per output row (int8); conv weights are [out, in, width]
            scale = scale.reshape(-1, *([1] * (value.dim() - 1)))
        return value.float() / scale
    return value.float().clone()  # clone: detach from the file buffer


def _linear(variables, ct2_name: str, hf_name: str, out: dict) -> None:
    out[f"{hf_name}.weight"] = _float(variables, f"{ct2_name}/weight")
    out[f"{hf_name}.bias"] = _float(variables, f"{ct2_name}/bias")


def _layer_norm(variables, ct2_name: str, hf_name: str, out: dict) -> None:
    out[f"{hf_name}.weight"] = _float(variables, f"{ct2_name}/gamma")
    out[f"{hf_name}.bias"] = _float(variables, f"{ct2_name}/beta")


def _split_rows(weight: torch.Tensor, parts: int) -> list[torch.Tensor]:
    return [chunk.clone() for chunk in torch.chunk(weight, parts, dim=0)]


def _attention(variables, ct2: str, hf: str, out: dict, cross: bool) -> None:
    """Undo ctranslate2's `utils.fuse_linear`: q|k|v (self) or q, k|v (cross) along rows."""
    if cross:
        q_w, q_b = _float(variables, f"{ct2}/linear_0/weight"), _float(variables, f"{ct2}/linear_0/bias")
        k_w, v_w = _split_rows(_float(variables, f"{ct2}/linear_1/weight"), 2)
        _, v_b = _split_rows(_float(variables, f"{ct2}/linear_1/bias"), 2)
        out_name = f"{ct2}/linear_2"
    else:
        q_w, k_w, v_w = _split_rows(_float(variables, f"{ct2}/linear_0/weight"), 3)
        q_b, _, v_b = _split_rows(_float(variables, f"{ct2}/linear_0/bias"), 3)
        out_name = f"{ct2}/linear_1"
    out.update({f"{hf}.q_proj.weight": q_w, f"{hf}.q_proj.bias": q_b, f"{hf}.k_proj.weight": k_w,
                f"{hf}.v_proj.weight": v_w, f"{hf}.v_proj.bias": v_b})
    _linear(variables, out_name, f"{hf}.out_proj", out)
    # transformers keeps the pre-attention norm beside the attention: self_attn_layer_norm, ...
    _layer_norm(variables, f"{ct2}/layer_norm", f"{hf}_layer_norm", out)


def _count_layers(variables, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"/layer_(\d+)/")
    return len({m.group(1) for m in map(pattern.match, variables) if m})


def whisper_state_dict(variables: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """WhisperSpec variables → (transformers state dict, WhisperConfig keyword arguments)."""
    sd: dict[str, torch.Tensor] = {}
    for side in ("encoder", "decoder"):
        sd[f"model.{side}.embed_positions.weight"] = _float(variables, f"{side}/position_encodings/encodings")
        _layer_norm(variables, f"{side}/layer_norm", f"model.{side}.layer_norm", sd)
    for conv in ("conv1", "conv2"):
        _linear(variables, f"encoder/{conv}", f"model.encoder.{conv}", sd)
    sd["model.decoder.embed_tokens.weight"] = _float(variables, "decoder/embeddings/weight")
    sd["proj_out.weight"] = _float(variables, "decoder/projection/weight")
    encoder_layers, decoder_layers = _count_layers(variables, "encoder"), _count_layers(variables, "decoder")
    for side, count in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        for i in range(count):
            ct2, hf = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            _attention(variables, f"{ct2}/self_attention", f"{hf}.self_attn", sd, cross=False)
            if side == "decoder":
                _attention(variables, f"{ct2}/attention", f"{hf}.encoder_attn", sd, cross=True)
            _linear(variables, f"{ct2}/ffn/linear_0", f"{hf}.fc1", sd)
            _linear(variables, f"{ct2}/ffn/linear_1", f"{hf}.fc2", sd)
            _layer_norm(variables, f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm", sd)
    vocab_size, d_model = sd["model.decoder.embed_tokens.weight"].shape
    config = {
        "vocab_size": vocab_size,
        "d_model": d_model,
        "num_mel_bins": sd["model.encoder.conv1.weight"].shape[1],
        "encoder_layers": encoder_layers,
        "decoder_layers": decoder_layers,
        "encoder_attention_heads": int(variables["encoder/num_heads"]),
        "decoder_attention_heads": int(variables["decoder/num_heads"]),
        "encoder_ffn_dim": sd["model.encoder.layers.0.fc1.weight"].shape[0],
        "decoder_ffn_dim": sd["model.decoder.layers.0.fc1.weight"].shape[0],
        "max_source_positions": sd["model.encoder.embed_positions.weight"].shape[0],
        "max_target_positions": sd["model.decoder.embed_positions.weight"].shape[0],
    }
    return sd, config


def build_processor(ct2_dir: str | Path, num_mel_bins: int, vocab_size: int):
    """WhisperProcessor = WhisperFeatureExtractor(num_mel_bins) + the folder's tokenizer.json as
    featurize.labels.load_tokenizer repairs it (the <|xx|> tokens special, <|0.00|>..<|30.00|>
    added), with <|endoftext|> as the pad token too, as on the Hub's Whisper tokenizers."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    from app.speech.audio import SAMPLE_RATE
    from featurize.labels import load_tokenizer

    tokenizer = load_tokenizer(str(ct2_dir))
    tokenizer.pad_token = "<|endoftext|>"
    if len(tokenizer) != vocab_size:
        raise ValueError(f"{ct2_dir}: the tokenizer has {len(tokenizer)} tokens, the model's vocabulary {vocab_size}")
    feature_extractor = WhisperFeatureExtractor(feature_size=num_mel_bins, sampling_rate=SAMPLE_RATE)
    return WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)


def build_generation_config(ct2_config: dict, tokenizer, max_length: int):
    """Generation settings transformers' Whisper generate() needs (languages, tasks, suppression)."""
    from transformers import GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    lang_ids = ct2_config.get("lang_ids") or []
    return GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"),
        bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|endoftext|>"), pad_token_id=ids("<|endoftext|>"),
        max_length=max_length,
        suppress_tokens=list(ct2_config.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or []),
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads") or []],
        is_multilingual=bool(lang_ids),
        lang_to_id={tokenizer.convert_ids_to_tokens(i): i for i in lang_ids},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,  # openai's decoder: first timestamp within 1 s
    )


def ct2_to_transformers(ct2_dir: str | Path):
    """Load a CTranslate2 Whisper folder as (WhisperForConditionalGeneration float32, WhisperProcessor)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    ct2_dir = Path(ct2_dir)
    spec, revision, variables = read_ct2_model_bin(ct2_dir / "model.bin")
    if spec != "WhisperSpec" or revision > _SUPPORTED_WHISPER_REVISION:
        raise ValueError(f"{ct2_dir}: {spec} revision {revision} is not a Whisper model this converter knows")
    state_dict, shape = whisper_state_dict(variables)
    del variables
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    processor = build_processor(ct2_dir, shape["num_mel_bins"], shape["vocab_size"])
    special = processor.tokenizer.convert_tokens_to_ids
    config = WhisperConfig(
        **shape,
        decoder_start_token_id=special("<|startoftranscript|>"),
        pad_token_id=special("<|endoftext|>"), bos_token_id=special("<|endoftext|>"),
        eos_token_id=special("<|endoftext|>"),
        suppress_tokens=list(ct2_config.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or []),
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    # k_proj has no bias in transformers' Whisper: nothing else may be left over or missing.
    if unexpected or [m for m in missing if m != "proj_out.weight"]:
        raise ValueError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.generation_config = build_generation_config(ct2_config, processor.tokenizer,
                                                      shape["max_target_positions"])
    return model.eval(), processor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.convert",
                                     description="Convert a CTranslate2 Whisper model back into a transformers "
                                                 "WhisperForConditionalGeneration + WhisperProcessor folder.")
    parser.add_argument("ct2_dir", nargs="?", default=None,
                        help="CTranslate2 Whisper folder (default: the app's embedded Whisper base)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (save_pretrained layout)")
    args = parser.parse_args(argv)
    if args.ct2_dir is None:
        from app.speech.model import embedded_model_dir

        args.ct2_dir = embedded_model_dir()
    model, processor = ct2_to_transformers(args.ct2_dir)
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    print(f"wrote {args.out} ({model.num_parameters() / 1e6:.1f} M parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
