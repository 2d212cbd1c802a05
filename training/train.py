"""Fine-tune Whisper on featurize's shards with Hugging Face's Seq2SeqTrainer.

    python -m training --data FEATURES --base embedded --out runs/zh [--config run.yaml] [options]

Re-running the same command resumes from the newest *complete* checkpoint in --out (model,
optimizer, scheduler, RNG and the position in the data), so a lost GPU costs at most
--save-steps steps. Several GPUs: the same command under `torchrun --nproc_per_node N -m training ...`
or `accelerate launch -m training ...` (Trainer's DDP). See training/README.md.

Writes into --out: checkpoint-N/ (the last --save-total-limit complete ones), the final model
and processor, run_config.json (every option; a valid --config), train_results.json and
eval_full_results.json (CER/WER of the whole eval split), trainer_state.json.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path

from training.arguments import RUN_CONFIG

log = logging.getLogger("training")


def _peak_memory() -> dict[str, float]:
    import torch

    peak = {"peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
    if torch.cuda.is_available():
        peak["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return peak


def build_datasets(data_args, model, processor, seed: int, cache_encoder_outputs: bool = False,
                   encoder_top_layers: int = 0):
    """(train, eval subset used during training, whole eval split); eval labels stay plain, like eval decoding.

    With cache_encoder_outputs the rows carry the encoder's output (computed now if not cached yet)
    instead of log-mel features; with encoder_top_layers N > 0, the input of encoder layer L-N."""
    from training import encoder_cache
    from training.data import CachedEncoderExamples, LabelForms, WhisperExamples, load_split, seeded_subset

    forms = LabelForms.from_tokenizer(processor.tokenizer)
    cache_dir = data_args.encoder_cache_dir or str(Path(data_args.data) / "encoder-cache")

    def examples(split: str, limit: int | None = None, share: float | None = None, timestamps: float = 0.0):
        rows = load_split(data_args.data, split)
        indices = list(range(len(rows)))
        if share is not None and share < 1:
            indices = seeded_subset(len(rows), share, seed)
        indices = indices[:limit] if limit is not None else indices
        if cache_encoder_outputs:
            layers = len(model.get_encoder().layers)
            outputs = encoder_cache.build(model, data_args.data, split, cache_dir, layer=layers - encoder_top_layers)
            return CachedEncoderExamples(rows, outputs, forms, timestamps, seed, indices)
        rows = rows.select(indices) if len(indices) < len(rows) else rows
        return WhisperExamples(rows, forms, timestamps, seed)

    train = examples(data_args.train_split, data_args.max_train_samples, data_args.train_share,
                     data_args.timestamp_fraction)
    if not data_args.eval_split:
        return train, None, None
    full = examples(data_args.eval_split)
    capped = examples(data_args.eval_split, data_args.max_eval_samples) if data_args.max_eval_samples else full
    return train, capped, full


def check_features_match(data_dir: str, processor) -> None:
    """Refuse shards labelled with another tokenizer layout or mel size than the model's."""
    from featurize import manifest as features_manifest

    manifest = features_manifest.read(data_dir)
    tokens = manifest.get("tokenizer", {})
    vocab = tokens.get("vocab_size")
    if vocab and vocab != len(processor.tokenizer):
        raise SystemExit(f"error: {data_dir} was labelled with a {vocab}-token vocabulary, the model's has "
                         f"{len(processor.tokenizer)}: featurize again with --model set to this base")
    prefix = tokens.get("prefix_tokens")
    if prefix and processor.tokenizer.convert_tokens_to_ids(prefix) != tokens.get("prefix_ids"):
        raise SystemExit(f"error: {data_dir}'s label ids do not match the model's tokenizer")
    mels = manifest.get("feature_extractor", {}).get("feature_size")
    if mels and mels != processor.feature_extractor.feature_size:
        raise SystemExit(f"error: {data_dir} has {mels} mel bins, the model wants "
                         f"{processor.feature_extractor.feature_size}")


def resume_point(out: Path, is_main: bool) -> Path | None:
    """The newest complete checkpoint in `out`; all ranks agree on it (only incomplete folders are
    deleted, by rank 0)."""
    from accelerate import PartialState

    from training import checkpoints

    resume = checkpoints.latest_complete_checkpoint(out)
    if is_main:
        for folder in checkpoints.discard_incomplete(out):
            log.warning("discarded incomplete checkpoint %s (killed while it was being written)", folder.name)
    PartialState().wait_for_everyone()
    return resume


def prepared_model(model_args, train_args, data_dir: str):
    """(model configured for this run, processor), refused when the shards were made for another."""
    from training.model import configure, load_base

    model, processor = load_base(model_args.base)
    check_features_match(data_dir, processor)
    top_layers = model_args.train_encoder_top_layers
    model = configure(model, language=model_args.language, task=model_args.task,
                      spec_augment=model_args.spec_augment_options(),
                      freeze_encoder=model_args.freeze_encoder or model_args.cache_encoder_outputs,
                      lora=model_args.lora_options(), freeze_decoder=model_args.freeze_decoder,
                      encoder_top_layers=top_layers,
                      from_encoder_layer_input=bool(top_layers and model_args.cache_encoder_outputs),
                      int8_aware=model_args.int8_aware,
                      gradient_checkpointing=bool(train_args.activation_checkpointing),
                      reentrant_checkpointing=bool((train_args.activation_checkpointing_kwargs or {})
                                                   .get("use_reentrant", False)))
    return model, processor


def build_trainer(model, processor, train_args, train_set, eval_capped, options_text: str,
                  l2sp_strength: float = 0.0):
    from transformers import Seq2SeqTrainer

    from training import checkpoints
    from training.data import WhisperCollator
    from training.metrics import ComputeMetrics

    # Trainer's own rotation would delete the previous checkpoint before the new one is marked
    # complete; the callback rotates after marking instead.
    keep_last, train_args.save_total_limit = train_args.save_total_limit, None
    callbacks = [checkpoints.CompleteCheckpointCallback(keep_last, {RUN_CONFIG: options_text})]
    if l2sp_strength:
        from training.l2sp import L2SPCallback

        callbacks.append(L2SPCallback(model, l2sp_strength))
    if not eval_capped:
        train_args.eval_strategy = "no"
        train_args.metric_for_best_model = None
    return Seq2SeqTrainer(
        model=model,
        args=train_args,
        train_dataset=train_set,
        eval_dataset=eval_capped,
        data_collator=WhisperCollator(model.config.decoder_start_token_id, processor.tokenizer.pad_token_id),
        processing_class=processor,
        compute_metrics=ComputeMetrics(processor.tokenizer),
        callbacks=callbacks,
    )


def train_and_evaluate(trainer, train_args, resume: Path | None, eval_full, final_eval: bool, out: Path) -> None:
    """Train (from `resume`), save, then evaluate the whole eval split. A rerun of a finished run
    (e.g. after a kill during the final save) only redoes what is missing."""
    from training import checkpoints

    finished_before = resume is not None and 0 < train_args.max_steps <= checkpoints.step_of(resume)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    model = trainer.model
    metrics = {**result.metrics, **_peak_memory(), "train_wall_s": round(time.perf_counter() - started, 1),
               "trainable_parameters": model.num_parameters(only_trainable=True),
               "total_parameters": model.num_parameters()}
    trainer.save_model(str(out))  # final weights (LoRA: the adapter) + processor, beside the checkpoints
    trainer.save_state()
    if not (finished_before and (out / "train_results.json").is_file()):
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
    if finished_before and (out / "eval_full_results.json").is_file():
        log.info("already trained to step %d and evaluated: nothing left to do", train_args.max_steps)
    elif eval_full is not None and final_eval:
        final = trainer.evaluate(eval_dataset=eval_full, metric_key_prefix="eval_full")
        trainer.log_metrics("eval_full", final)
        trainer.save_metrics("eval_full", final)


def main(argv: list[str] | None = None) -> int:
    from transformers import set_seed

    from app.speech.model import describe_model
    from featurize.manifest import MANIFEST_NAME
    from training.arguments import parse, resolved_options

    model_args, data_args, train_args, _ = parse(argv)
    if not (Path(data_args.data) / MANIFEST_NAME).is_file():
        raise SystemExit(f"error: {data_args.data} is not a finished featurize folder (no manifest.json): "
                         "run python -m featurize --source ... --out FOLDER first, or rerun it to finish")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        stream=sys.stdout)
    is_main = train_args.process_index == 0  # first touch sets up the distributed state from the args
    out = Path(train_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume = resume_point(out, is_main)
    if resume:
        log.info("resuming from %s", resume)
    else:
        log.info("starting from %s", describe_model(model_args.base))

    set_seed(train_args.seed)
    model, processor = prepared_model(model_args, train_args, data_args.data)
    log.info("parameters: %.1f M trainable of %.1f M", model.num_parameters(only_trainable=True) / 1e6,
             model.num_parameters() / 1e6)
    with train_args.main_process_first(desc="loading shards"):
        train_set, eval_capped, eval_full = build_datasets(data_args, model, processor, train_args.seed,
                                                           model_args.cache_encoder_outputs,
                                                           model_args.train_encoder_top_layers)
    log.info("train: %d clips; eval: %s", len(train_set),
             f"{len(eval_capped)} during training, {len(eval_full)} at the end" if eval_full else "none")

    options_text = json.dumps(resolved_options(model_args, data_args, train_args), indent=1, ensure_ascii=False)
    if is_main:
        (out / RUN_CONFIG).write_text(options_text, encoding="utf-8")
    trainer = build_trainer(model, processor, train_args, train_set, eval_capped, options_text,
                            model_args.l2sp_strength)
    train_and_evaluate(trainer, train_args, resume, eval_full, data_args.final_eval, out)
    if is_main and data_args.eval_real:
        evaluate_real(out, data_args.eval_real, data_args.eval_real_split)
    return 0


def evaluate_real(out: Path, real: str, split: str) -> None:
    """Score the final model on a real-speech set as the app would run it (CTranslate2 int8, the app's
    decoding; the in-training eval uses transformers' generate), beside eval_full's CER."""
    from training import evaluate, export

    model_dir = export.export(out, out / "eval-real-ct2", "int8")
    code = evaluate.main(["--model", str(model_dir), "--data", real, "--split", split,
                          "--json", str(out / "eval_real_results.json"), "--csv", str(out / "eval_real.csv")])
    if code != 0:
        raise SystemExit(f"error: could not score {real} ({split}); see the line above")
    result = json.loads((out / "eval_real_results.json").read_text(encoding="utf-8"))
    log.info("real speech (%s, %s): %s", real, split, {k: v for k, v in result.items() if "cer" in k.lower()})


if __name__ == "__main__":
    sys.exit(main())
