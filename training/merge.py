"""WiSE-FT: mix a fine-tuned Whisper with its base in weight space, export for the app.

    python -m training.merge --base embedded --tuned runs/top6 --alpha 0.5 --out models/top6-a0.5

Every floating-point weight becomes θ = (1 - α)·θ_base + α·θ_tuned (Wortsman et al., "Robust
fine-tuning of zero-shot models", 2022): α = 0 is the base, α = 1 the fine-tuned model, values in
between usually keep most of the fine-tuning's gain on the target data and much of the base's
robustness elsewhere (issue 18: real voices). Choose α on dev halves (zh-synth dev and the
real-speech dev split of training.real_speech), then report test once.

--alpha-encoder / --alpha-decoder give the two halves their own α (default: --alpha). The encoder
is where a one-voice fine-tune learns the voice, the decoder (with the tied output projection) where
it learns the sentences' wording, so the two can be kept in different measure: --alpha-decoder 0
keeps the base's decoder whole.

--base   anything `python -m training --base` takes: `embedded`, a CTranslate2 Whisper folder, a
         transformers folder or a Hub id.
--tuned  a training run's --out folder or checkpoint-N (LoRA checkpoints are merged onto --base
         first), an export of training.export (its transformers/ is used) or a transformers folder.

Both must have the same architecture (same parameter names and shapes). Non-float buffers are
taken from the tuned model and must equal the base's. OUT is written as training.export writes
an export: a CTranslate2 model at the top (--quantization, default int8), the merged transformers
model in OUT/transformers/, and OUT/merge.json (base, tuned, alpha).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def load_tuned(tuned: Path, base: str):
    """(model, processor) of --tuned, float32, eval mode."""
    from training.export import TRANSFORMERS_SUBDIR, load_trained
    from training.model import load_base

    if (tuned / TRANSFORMERS_SUBDIR / "config.json").is_file():  # an export folder
        tuned = tuned / TRANSFORMERS_SUBDIR
    if (tuned / "model.bin").is_file() and not any(
            (tuned / name).is_file() for name in ("model.safetensors", "pytorch_model.bin", "adapter_config.json")):
        # a CTranslate2 folder
        model, processor = load_base(str(tuned))
        return model.eval(), processor
    return load_trained(tuned, base)


def alpha_of(name: str, alpha_encoder: float, alpha_decoder: float) -> float:
    """The mixing weight of one parameter: the encoder's for encoder weights, else the decoder's
    (decoder layers, token and position embeddings, and the output projection tied to them)."""
    return alpha_encoder if name.startswith("model.encoder.") else alpha_decoder


def halves(alpha: float, alpha_encoder: float | None, alpha_decoder: float | None) -> tuple[float, float]:
    """(encoder α, decoder α): each half's own, or --alpha where it has none."""
    return (alpha if alpha_encoder is None else alpha_encoder, alpha if alpha_decoder is None else alpha_decoder)


def interpolate(base_state: dict, tuned_state: dict, alpha: float, alpha_encoder: float | None = None,
                alpha_decoder: float | None = None) -> dict:
    """(1 - a) * base + a * tuned for every floating tensor, a = alpha or the half's own alpha;
    non-float tensors must agree and are kept."""
    import torch

    alpha_encoder, alpha_decoder = halves(alpha, alpha_encoder, alpha_decoder)
    if base_state.keys() != tuned_state.keys():
        only_base = sorted(base_state.keys() - tuned_state.keys())[:5]
        only_tuned = sorted(tuned_state.keys() - base_state.keys())[:5]
        raise ValueError(f"base and tuned models differ in their weights: only in base {only_base}, "
                         f"only in tuned {only_tuned}")
    merged = {}
    for name, tuned_value in tuned_state.items():
        base_value = base_state[name]
        if base_value.shape != tuned_value.shape:
            raise ValueError(f"{name}: base shape {tuple(base_value.shape)}, tuned {tuple(tuned_value.shape)}")
        if torch.is_floating_point(tuned_value):
            a = alpha_of(name, alpha_encoder, alpha_decoder)
            mixed = base_value.double() * (1.0 - a) + tuned_value.double() * a
            merged[name] = mixed.to(tuned_value.dtype)
        else:
            if not torch.equal(base_value, tuned_value):
                raise ValueError(f"{name}: a non-float tensor that differs between base and tuned")
            merged[name] = tuned_value.clone()
    return merged


def merge(base: str, tuned: Path, alpha: float, out: Path, quantization: str = "int8",
          alpha_encoder: float | None = None, alpha_decoder: float | None = None) -> Path:
    from training.export import TRANSFORMERS_SUBDIR, convert_to_ct2, save_transformers
    from training.model import load_base

    alpha_encoder, alpha_decoder = halves(alpha, alpha_encoder, alpha_decoder)
    for value in (alpha, alpha_encoder, alpha_decoder):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"alpha {value}: WiSE-FT mixes within [0, 1]")
    base_model, base_processor = load_base(base)
    model, processor = load_tuned(tuned, base)
    merged = interpolate(base_model.state_dict(), model.state_dict(), alpha, alpha_encoder, alpha_decoder)
    del base_model
    model.load_state_dict(merged)
    model.config.use_cache = True
    out.mkdir(parents=True, exist_ok=True)
    hf_dir = out / TRANSFORMERS_SUBDIR
    if hf_dir.exists():
        shutil.rmtree(hf_dir)
    save_transformers(model, processor or base_processor, hf_dir)
    del model, merged
    convert_to_ct2(hf_dir, out, quantization)
    info = {"base": base, "tuned": str(tuned), "alpha": alpha, "alpha_encoder": alpha_encoder,
            "alpha_decoder": alpha_decoder, "quantization": quantization,
            "formula": "(1 - alpha) * base + alpha * tuned, every floating-point weight (alpha_encoder for the "
                       "encoder's, alpha_decoder for the rest)"}
    (out / "merge.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    from training.export import QUANTIZATIONS

    parser = argparse.ArgumentParser(prog="python -m training.merge", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--base", default="embedded", help="embedded, a CTranslate2 folder, a transformers folder "
                                                           "or a Hub id")
    parser.add_argument("--tuned", type=Path, required=True, help="run folder, checkpoint-N, export folder or "
                                                                  "transformers folder of the fine-tuned model")
    parser.add_argument("--alpha", type=float, required=True, help="weight of the tuned model, 0 (base) to 1 (tuned)")
    parser.add_argument("--alpha-encoder", type=float, default=None, help="the encoder's own alpha (default: --alpha)")
    parser.add_argument("--alpha-decoder", type=float, default=None,
                        help="the decoder's own alpha, output projection included (default: --alpha)")
    parser.add_argument("--out", type=Path, required=True, help="export folder (CTranslate2 model at its top)")
    parser.add_argument("--quantization", default="int8", choices=QUANTIZATIONS)
    args = parser.parse_args(argv)
    if not args.tuned.is_dir():
        parser.error(f"--tuned {args.tuned} is not a folder")
    for option in ("alpha", "alpha_encoder", "alpha_decoder"):
        value = getattr(args, option)
        if value is not None and not 0.0 <= value <= 1.0:
            parser.error(f"--{option.replace('_', '-')} {value}: WiSE-FT mixes within [0, 1]")
    out = merge(args.base, args.tuned, args.alpha, args.out, args.quantization, args.alpha_encoder, args.alpha_decoder)
    alpha_encoder, alpha_decoder = halves(args.alpha, args.alpha_encoder, args.alpha_decoder)
    print(f"merged (1 - α) * {args.base} + α * {args.tuned}, α = {alpha_encoder} (encoder), {alpha_decoder} "
          f"(decoder) → {out} ({args.quantization})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
