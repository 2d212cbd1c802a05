"""Export a fine-tuned checkpoint for the app: CTranslate2 model + transformers model + model card.

    python -m training.export runs/zh/checkpoint-2000 --out models/zimu-zh [--quantization int8]

DIR is a CTranslate2 Whisper folder that faster-whisper and `python -m app --model DIR` load as
they are (model.bin, config.json, vocabulary, tokenizer.json, preprocessor_config.json);
DIR/transformers/ holds the same weights for transformers (and further fine-tuning, --base DIR/transformers);
DIR/README.md is the model card: base, data, options, metrics.

CHECKPOINT is a checkpoint-N folder or a run's --out folder (its final model), or any transformers
Whisper folder (e.g. `python -m training.convert --out`). LoRA checkpoints hold only the adapter:
it is loaded onto the run's base (from run_config.json, or --base) and merged into the weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from training.arguments import RUN_CONFIG

QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "int8_bfloat16", "float16", "bfloat16", "float32")
TRANSFORMERS_SUBDIR = "transformers"


def run_config(checkpoint: Path) -> dict:
    """The run's options: in the checkpoint, or in the run folder above it."""
    for folder in (checkpoint, checkpoint.parent):
        path = folder / RUN_CONFIG
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return {}


def load_trained(checkpoint: Path, base: str | None):
    """(merged WhisperForConditionalGeneration, WhisperProcessor) of a checkpoint."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from training.model import load_base

    if (checkpoint / "adapter_config.json").is_file():
        from peft import PeftModel

        base_model, base_processor = load_base(base)
        model = PeftModel.from_pretrained(base_model, str(checkpoint)).merge_and_unload()
    else:
        model, base_processor = WhisperForConditionalGeneration.from_pretrained(str(checkpoint), dtype="float32"), None
    try:
        processor = WhisperProcessor.from_pretrained(str(checkpoint))
    except (OSError, ValueError):
        if base_processor is None:
            raise
        processor = base_processor
    model.config.use_cache = True  # training turns it off for gradient checkpointing
    return model.eval(), processor


def save_transformers(model, processor, folder: Path) -> None:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    # faster-whisper reads the mel settings from preprocessor_config.json (transformers 5 nests
    # them in processor_config.json); n_mels must follow the model (80, or 128 for large-v3).
    processor.feature_extractor.to_json_file(str(folder / "preprocessor_config.json"))


def convert_to_ct2(transformers_dir: Path, out: Path, quantization: str) -> None:
    """ctranslate2's own converter; written beside `out` and moved in, so a killed export leaves no half model."""
    from ctranslate2.converters import TransformersConverter

    staging = Path(tempfile.mkdtemp(prefix=".ct2-", dir=out))
    try:
        converter = TransformersConverter(str(transformers_dir),
                                          copy_files=["tokenizer.json", "preprocessor_config.json"])
        converter.convert(str(staging / "model"), quantization=quantization, force=True)
        for path in (staging / "model").iterdir():
            path.replace(out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _metrics_table(checkpoint: Path) -> list[str]:
    lines = []
    for folder in (checkpoint, checkpoint.parent):
        for name in ("eval_full_results.json", "train_results.json"):
            path = folder / name
            if path.is_file():
                metrics = json.loads(path.read_text(encoding="utf-8"))
                lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                          for k, v in sorted(metrics.items())]
        if lines:
            break
    state_path = checkpoint / "trainer_state.json"
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        evals = [e for e in state.get("log_history", []) if "eval_cer" in e]
        for e in evals[-5:]:
            lines.append(f"| eval_cer at step {e.get('step')} (capped eval subset) | {e['eval_cer']:.4g} |")
    return lines


def model_card(checkpoint: Path, options: dict, quantization: str) -> str:
    from featurize.manifest import MANIFEST_NAME, read

    data = options.get("data")
    manifest = read(data) if data and (Path(data) / MANIFEST_NAME).is_file() else {}
    lines = ["---", "language: zh", "library_name: ctranslate2", "pipeline_tag: automatic-speech-recognition",
             "tags: [whisper, faster-whisper, zimu]", "---", "",
             "# Zimu fine-tuned Whisper", "",
             f"Exported from `{checkpoint}` by `python -m training.export` as a CTranslate2 model "
             f"({quantization}) for faster-whisper and the Zimu app (`python -m app --model THIS_FOLDER`), "
             f"with the transformers weights in `{TRANSFORMERS_SUBDIR}/`.", "",
             "## Base model", "", f"`{options.get('base', 'unknown')}`", "", "## Data", ""]
    if manifest:
        for split, info in manifest.get("splits", {}).items():
            lines.append(f"- {split}: {info.get('rows')} clips, {info.get('hours')} h")
        for source in manifest.get("sources", []):
            written = source.get("written") or source.get("source") or source.get("location")
            lines.append(f"- source: `{written}`")
        lines.append(f"- features: `{data}` (store: {manifest.get('store')}, "
                     f"augmentation: {json.dumps(manifest.get('augment'))})")
    else:
        lines.append(f"`{data}`" if data else "not recorded (no run_config.json beside the checkpoint)")
    lines += ["", "## Training options", ""]
    if options:
        keys = ("freeze_encoder", "lora", "lora_r", "lora_alpha", "apply_spec_augment", "mask_time_prob",
                "mask_feature_prob", "timestamp_fraction", "learning_rate", "lr_scheduler_type", "warmup_steps",
                "max_steps", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
                "label_smoothing_factor", "bf16", "fp16", "seed")
        lines += ["| option | value |", "|---|---|"] + [f"| {k} | {options[k]} |" for k in keys if k in options]
        lines += ["", "Every option is in `run_config.json` beside the checkpoint (a valid `--config`)."]
    else:
        lines.append("not recorded")
    lines += ["", "## Metrics", "",
              "CER and WER after `app.language.text` normalisation (Simplified, no punctuation); WER over jieba words.", ""]
    metrics = _metrics_table(checkpoint)
    lines += (["| metric | value |", "|---|---|"] + metrics) if metrics else ["none recorded"]
    lines += ["", "## Use", "", "```", "python -m app transcribe CLIP.mp3 --model THIS_FOLDER", "```", ""]
    return "\n".join(lines)


def export(checkpoint: Path, out: Path, quantization: str = "int8", base: str | None = None) -> Path:
    options = run_config(checkpoint)
    model, processor = load_trained(checkpoint, base or options.get("base"))
    out.mkdir(parents=True, exist_ok=True)
    hf_dir = out / TRANSFORMERS_SUBDIR
    if hf_dir.exists():
        shutil.rmtree(hf_dir)
    save_transformers(model, processor, hf_dir)
    del model
    convert_to_ct2(hf_dir, out, quantization)
    (out / "README.md").write_text(model_card(checkpoint, options, quantization), encoding="utf-8")
    if options:
        (out / RUN_CONFIG).write_text(json.dumps(options, indent=1, ensure_ascii=False), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="checkpoint-N folder, a run's --out folder, or a "
                                                      "transformers Whisper folder")
    parser.add_argument("--out", type=Path, required=True, help="export folder (CTranslate2 model at its top)")
    parser.add_argument("--quantization", default="int8", choices=QUANTIZATIONS,
                        help="CTranslate2 weight type: int8 (CPU, smallest), int8_float16 (GPU), float16 (GPU)")
    parser.add_argument("--base", default=None,
                        help="base model of a LoRA checkpoint when its run_config.json is missing")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_dir():
        parser.error(f"{args.checkpoint} is not a folder")
    out = export(args.checkpoint, args.out, args.quantization, args.base)
    print(f"exported {args.checkpoint} → {out} ({args.quantization}); "
          f"try: python -m app transcribe CLIP --model {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
