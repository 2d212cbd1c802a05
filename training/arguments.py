"""Command-line and config-file arguments, as dataclasses in the style of Hugging Face's
run_speech_recognition_seq2seq.py: ModelArguments, DataArguments and Seq2SeqTrainingArguments
(every Trainer option works: --learning-rate, --max-steps, --save-steps, --push-to-hub, ...).

`--config run.yaml` (or .json) supplies any of these options for a reproducible run; options
given on the command line override it. Every run writes its resolved options to
OUT/run_config.json, which is itself a valid --config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, Seq2SeqTrainingArguments

from featurize.cli import dashes_first


@dataclass
class ModelArguments:
    base: str = field(default="embedded", metadata={
        "help": "model to fine-tune: 'embedded' (the app's CTranslate2 Whisper base, converted; no Hub needed), "
                "a CTranslate2 Whisper folder, a transformers Whisper folder, or a Hub id (openai/whisper-small)"})
    language: str = field(default="zh", metadata={"help": "language token forced when generating for evaluation"})
    task: str = field(default="transcribe", metadata={"help": "transcribe or translate"})
    freeze_encoder: bool = field(default=False, metadata={
        "help": "train the decoder only: about half the memory and time per step, keeps the acoustic model as is"})
    freeze_decoder: bool = field(default=False, metadata={
        "help": "keep the decoder (and the token embedding the output layer shares) as the base's: only the "
                "encoder learns, to serve the base decoder; a decoder fine-tuned on synthetic text and voices "
                "carries their habits into real speech (issue 27)"})
    lora: bool = field(default=False, metadata={
        "help": "train LoRA adapters (peft) instead of all weights; they are merged into the weights at export"})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA scaling alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA path"})
    lora_target_modules: str = field(default="q_proj,k_proj,v_proj,out_proj,fc1,fc2", metadata={
        "help": "comma-separated linear layers that get adapters (decoder only with --freeze-encoder)"})
    cache_encoder_outputs: bool = field(default=False, metadata={
        "help": "decoder-only training on encoder outputs computed once and kept on disk (implies "
                "--freeze-encoder; no SpecAugment): on a CPU the encoder is most of a step's cost, so every "
                "further epoch and every further run on the same shards costs only the decoder"})
    train_encoder_top_layers: int = field(default=0, metadata={
        "help": "with --freeze-encoder or --cache-encoder-outputs: the encoder's top N layers (and its final layer "
                "norm) train too; with the cache, the cache holds the input of layer L-N, so only those N layers "
                "and the decoder run per step: the cheapest way for a CPU to adapt the acoustic model"})
    int8_aware: bool = field(default=False, metadata={
        "help": "quantisation-aware training: weights and inputs of every linear layer rounded the way CTranslate2's "
                "int8 rounds them (straight-through gradient), so the exported int8 model, what the CPU app "
                "runs, loses less to quantisation; for a last, short run from a trained model (training.int8_aware)"})
    apply_spec_augment: bool = field(default=False, metadata={
        "help": "SpecAugment on the log-mel input during training (Whisper's built-in masking)"})
    mask_time_prob: float = field(default=0.05, metadata={"help": "SpecAugment: share of frames masked"})
    mask_time_length: int = field(default=10, metadata={"help": "SpecAugment: frames per time mask"})
    mask_time_min_masks: int = field(default=2, metadata={"help": "SpecAugment: minimum time masks"})
    mask_feature_prob: float = field(default=0.0, metadata={"help": "SpecAugment: share of mel bins masked"})
    mask_feature_length: int = field(default=10, metadata={"help": "SpecAugment: mel bins per feature mask"})
    l2sp_strength: float = field(default=0.0, metadata={
        "help": "L2-SP: after each optimizer step pull every trained weight back toward the base's by "
                "min(1, lr * strength) of the distance (training.l2sp), so a fine-tune on one voice forgets "
                "less of the rest; ~1000 keeps weights within ~1e-3 of the base; 0 = off; not with --lora"})
    precision: str = field(default="auto", metadata={
        "help": "auto (bf16 on GPUs that have it, else fp16 on GPU, fp32 on CPU), bf16, fp16 or fp32",
        "choices": ["auto", "bf16", "fp16", "fp32"]})

    def __post_init__(self):
        """Refuse option combinations that cannot work, in one line each."""
        top = self.train_encoder_top_layers
        if self.cache_encoder_outputs and self.apply_spec_augment:
            raise SystemExit("error: --apply-spec-augment changes the encoder's input every step, which a cache of "
                             "its outputs cannot follow: drop one of the two (augment with featurize instead)")
        if top and not (self.freeze_encoder or self.cache_encoder_outputs):
            raise SystemExit("error: --train-encoder-top-layers only applies with --freeze-encoder or "
                             "--cache-encoder-outputs (without them the whole encoder trains)")
        if self.freeze_decoder and (self.freeze_encoder or self.cache_encoder_outputs) and not top:
            raise SystemExit("error: --freeze-decoder with a frozen encoder leaves nothing to train: add "
                             "--train-encoder-top-layers N")
        if self.freeze_decoder and self.lora:
            raise SystemExit("error: --freeze-decoder and --lora do not combine: LoRA's adapters go to the decoder")
        if self.int8_aware and self.lora:
            raise SystemExit("error: --int8-aware and --lora do not combine: the adapters are merged into the "
                             "weights only at export, so training cannot round the weights the int8 model will hold")
        if top and self.lora:
            raise SystemExit("error: --train-encoder-top-layers and --lora do not combine: LoRA adapters go to the "
                             "decoder only when the encoder is frozen")
        if self.l2sp_strength < 0:
            raise SystemExit("error: --l2sp-strength must be 0 (off) or positive")
        if self.l2sp_strength and self.lora:
            raise SystemExit("error: --l2sp-strength pulls weights toward the base's, and LoRA's adapters start at "
                             "zero: use one of the two")

    def spec_augment_options(self) -> dict | None:
        """Whisper config's SpecAugment settings, or None when it is off."""
        if not self.apply_spec_augment:
            return None
        return {k: getattr(self, k) for k in ("mask_time_prob", "mask_time_length", "mask_time_min_masks",
                                              "mask_feature_prob", "mask_feature_length")}

    def lora_options(self) -> dict | None:
        """peft LoraConfig settings, or None without --lora."""
        if not self.lora:
            return None
        return {"r": self.lora_r, "lora_alpha": self.lora_alpha, "lora_dropout": self.lora_dropout,
                "target_modules": [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]}


@dataclass
class DataArguments:
    data: str | None = field(default=None, metadata={
        "help": "features folder written by featurize (Parquet shards per split); required"})
    train_split: str = field(default="train", metadata={"help": "split to train on"})
    eval_split: str = field(default="dev", metadata={"help": "split for evaluation ('' for none)"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N training clips"})
    train_share: float | None = field(default=None, metadata={
        "help": "train on a seeded random share (0..1] of the training split: data-size experiments "
                "(the shards may be sorted, e.g. by HSK level, so the first N clips would be biased)"})
    encoder_cache_dir: str | None = field(default=None, metadata={
        "help": "where --cache-encoder-outputs keeps the encoder outputs (default: DATA/encoder-cache); "
                "float16, ~1.5 MB per clip for whisper-base, reused by every run on the same shards and base"})
    max_eval_samples: int | None = field(default=200, metadata={
        "help": "evaluation during training uses only the first N clips of the eval split (fast, capped); "
                "the full split is evaluated once at the end"})
    final_eval: bool = field(default=True, metadata={"help": "evaluate the whole eval split after training"})
    eval_real: str | None = field(default=None, metadata={
        "help": "a real-speech set (python -m training.real_speech fetch DIR): after training, the final model is "
                "exported to CTranslate2 and scored on it with the app's decoder (eval_real_results.json), so a "
                "fine-tune that forgets real voices shows beside the target's CER"})
    eval_real_split: str = field(default="dev", metadata={"help": "which half of --eval-real to score"})
    timestamp_fraction: float = field(default=0.5, metadata={
        "help": "share of training examples whose labels carry timestamp tokens (<|0.00|> text <|end|>); keeps "
                "the exported model emitting segment timestamps, which the app's subtitles rely on"})


@dataclass
class TrainArguments(Seq2SeqTrainingArguments):
    """Seq2SeqTrainingArguments with this project's defaults (GPU-first, resumable, CER-driven)."""

    output_dir: str | None = field(default=None, metadata={
        "help": "where checkpoints, logs and the final model go (local, a mounted drive); required",
        "aliases": ["--out"]})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "batch size per GPU/CPU"})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "evaluation batch size per GPU/CPU"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    learning_rate: float = field(default=1e-5, metadata={"help": "peak learning rate (LoRA wants ~1e-4..1e-3)"})
    warmup_steps: float = field(default=50, metadata={"help": "linear warm-up steps (or a fraction < 1)"})
    max_steps: int = field(default=2000, metadata={"help": "optimizer steps to train (overrides num_train_epochs)"})
    lr_scheduler_type: str = field(default="linear", metadata={"help": "learning-rate schedule"})
    activation_checkpointing: bool | None = field(default=True, metadata={
        "help": "gradient checkpointing: recompute activations in the backward pass, much less memory for "
                "~20%% more time (--activation-checkpointing false to turn off)"})
    activation_checkpointing_kwargs: dict[str, Any] | str | None = field(
        default_factory=lambda: {"use_reentrant": False},  # works with frozen inputs (frozen encoder, LoRA)
        metadata={"help": "passed to torch.utils.checkpoint"})
    eval_strategy: str = field(default="steps", metadata={"help": "no, steps or epoch"})
    eval_steps: float | None = field(default=500, metadata={"help": "evaluate (capped subset) every N steps"})
    save_strategy: str = field(default="steps", metadata={"help": "no, steps or epoch"})
    save_steps: float = field(default=250, metadata={"help": "write a checkpoint every N steps"})
    save_total_limit: int | None = field(default=3, metadata={"help": "keep the last K complete checkpoints"})
    logging_steps: float = field(default=25, metadata={"help": "log loss and learning rate every N steps"})
    predict_with_generate: bool = field(default=True, metadata={"help": "evaluate CER on generated text"})
    generation_max_length: int | None = field(default=225, metadata={"help": "max tokens generated in evaluation"})
    metric_for_best_model: str | None = field(default="cer", metadata={"help": "metric that ranks checkpoints"})
    greater_is_better: bool | None = field(default=False, metadata={"help": "lower CER is better"})
    dataloader_num_workers: int = field(default=4, metadata={
        "help": "processes that decode audio and compute log-mel while the GPU trains (0 = in the main process)"})
    remove_unused_columns: bool = field(default=False, metadata={"help": "keep the collator's columns"})
    label_names: list[str] | None = field(default_factory=lambda: ["labels"], metadata={"help": "label columns"})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "tensorboard, wandb, ... or none"})


PARSED = (ModelArguments, DataArguments, TrainArguments)


def hardware_precision(choice: str) -> dict[str, bool]:
    """bf16 where the GPU supports it (Ampere and newer), fp16 on older GPUs, fp32 on CPU."""
    import torch

    if choice == "auto":
        if not torch.cuda.is_available():
            choice = "fp32"
        else:
            choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def load_config_file(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        config = yaml.safe_load(text) or {}
    else:
        config = json.loads(text)
    if not isinstance(config, dict):
        raise SystemExit(f"error: {path} must hold a mapping of option: value")
    return config


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser(PARSED, prog="python -m training",
                              description="Fine-tune Whisper on featurized shards with Seq2SeqTrainer. Re-running "
                                          "the same command resumes from the latest complete checkpoint in --out.",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML or JSON file of options (any option here, by its name without dashes); the "
                             "command line overrides it. OUT/run_config.json of a previous run is one")
    return dashes_first(parser)


def parse(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainArguments, dict]:
    """Parse defaults ← hardware ← --config ← command line; returns the dataclasses and the file's options."""
    argv = sys.argv[1:] if argv is None else list(argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    pre.add_argument("--precision", default=None)
    known, _ = pre.parse_known_args(argv)
    config = load_config_file(known.config) if known.config else {}
    parser = build_parser()
    # A file key is any option name without its dashes ("out" and "output_dir" alike).
    names = {opt.lstrip("-").replace("-", "_"): action.dest
             for action in parser._actions for opt in action.option_strings if opt.startswith("--")}
    unknown = sorted(k for k in config if k not in names)
    if unknown:
        parser.error(f"unknown option(s) in {known.config}: {', '.join(unknown)}")
    config = {names[k]: v for k, v in config.items()}
    precision = known.precision or config.get("precision", "auto")
    if "bf16" not in config and "fp16" not in config:
        parser.set_defaults(**hardware_precision(precision))
    import torch

    accelerator = torch.cuda.is_available() or torch.backends.mps.is_available() or (
        hasattr(torch, "xpu") and torch.xpu.is_available())
    # Pinning only helps a GPU; use_cpu makes torchrun on a CPU-only machine real DDP (gloo) rather
    # than N independent runs writing into the same folder.
    parser.set_defaults(dataloader_pin_memory=torch.cuda.is_available(), use_cpu=not accelerator)
    parser.set_defaults(**config)
    # Checked on the plain namespace: TrainingArguments would quietly default output_dir to ./trainer_output.
    namespace = parser.parse_args(argv)
    if not namespace.data:
        parser.error("--data FEATURES is required (on the command line or in --config)")
    if not namespace.output_dir:
        parser.error("--out DIR is required (on the command line or in --config)")
    model_args, data_args, train_args = parser.parse_args_into_dataclasses(args=argv)[:3]
    return model_args, data_args, train_args, config


# A run folder's record of its options (resolved_options), usable as --config to rerun it; export copies it.
RUN_CONFIG = "run_config.json"


def resolved_options(model_args, data_args, train_args) -> dict:
    """Every option of the run as plain JSON values, usable as --config to reproduce it."""
    options = {}
    defaults = {f.name for f in dataclasses.fields(TrainArguments)}
    for args in (model_args, data_args):
        options.update(dataclasses.asdict(args))
    train = train_args.to_dict()
    options.update({k: v for k, v in train.items() if k in defaults and not k.startswith("_")
                    and k not in ("local_rank", "hub_token", "logging_dir", "gradient_checkpointing",
                                  "gradient_checkpointing_kwargs")})
    return json.loads(json.dumps(options, default=str))
