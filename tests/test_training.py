"""training/: CT2 ↔ transformers conversion, fine-tuning on featurized zh-synth clips, resume after
SIGKILL (mid-training and mid-checkpoint), export to CTranslate2 for faster-whisper and the app.

Offline and on CPU: the model trained here is a tiny random-config Whisper (2+2 layers, d_model 64)
with the embedded model's tokenizer, so a step takes about a second; the app-level check exports
the *converted embedded base* instead, which must still transcribe a clip correctly.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.language.text import normalize_for_cer
from tests.conftest import ROOT, clip_path, read_split, write_split

TRAIN_CLIPS, DEV_CLIPS = 16, 4
# Identical for the reference run and every interrupted run: their results must match exactly.
TRAIN_ARGS = ["--max_steps", "8", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
              "--learning_rate", "1e-3", "--warmup_steps", "0", "--save_steps", "2", "--save_total_limit", "2",
              "--logging_steps", "1", "--eval_strategy", "steps", "--eval_steps", "4", "--max_eval_samples", "2",
              "--generation_max_length", "8", "--dataloader_num_workers", "0", "--disable_tqdm", "true"]


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    # One thread: on a small shared CPU, torch's two OpenMP threads contending with other work made
    # a tiny-model step ~10x slower (measured 3.3 s vs 0.33 s), and these runs need no parallelism.
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp / "datasets-cache"), TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1")
    return env


# Training whose process SIGKILLs itself right after Trainer wrote checkpoint-{step} but before it is
# marked complete: what a machine lost during a save leaves behind.
KILL_BEFORE_MARK = """
import os, signal, sys
from training import checkpoints, train
mark_complete = checkpoints.mark_complete
def killed_before_mark(folder, step):
    if step == {step}:
        os.kill(os.getpid(), signal.SIGKILL)
    mark_complete(folder, step)
checkpoints.mark_complete = killed_before_mark
sys.exit(train.main(sys.argv[1:]))
"""


def _python(*args, env: dict, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[:2]} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("training")


@pytest.fixture(scope="module")
def features(work, zh_synth) -> Path:
    """~16 train + 4 dev zh-synth clips through featurize's own CLI (Opus audio shards)."""
    mini = work / "cv-mini"
    (mini / "clips").mkdir(parents=True)
    for split, count in (("train", TRAIN_CLIPS), ("dev", DEV_CLIPS)):
        rows = read_split(split)[:count]
        write_split(mini, split, rows)
        for row in rows:
            (mini / "clips" / row["path"]).symlink_to(clip_path(row))
    out = work / "features"
    _python("-m", "featurize", "--source", f"cv:{mini}:train+dev", "--out", str(out), "--quiet", env=_env(work))
    return out


@pytest.fixture(scope="module")
def processor():
    from app.speech.model import embedded_model_dir
    from training.convert import build_processor

    return build_processor(embedded_model_dir(), 80, 51865)


def tiny_whisper(processor, seed: int = 0):
    """A random Whisper with the real vocabulary and generation settings, small enough for CPU tests."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from app.speech.model import embedded_model_dir
    from training.convert import build_generation_config

    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=51865, d_model=64, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                           decoder_ffn_dim=128, num_mel_bins=80, decoder_start_token_id=50258,
                           pad_token_id=50257, bos_token_id=50257, eos_token_id=50257)
    model = WhisperForConditionalGeneration(config)
    ct2_config = json.loads((embedded_model_dir() / "config.json").read_text())
    model.generation_config = build_generation_config(ct2_config, processor.tokenizer, 448)
    return model


@pytest.fixture(scope="module")
def tiny_base(work, processor) -> Path:
    folder = work / "tiny-base"
    tiny_whisper(processor).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _train(out: Path, features: Path, base: Path, *extra: str) -> list[str]:
    return ["-m", "training", "--data", str(features), "--base", str(base), "--out", str(out), *TRAIN_ARGS, *extra]


def _two_step_run(work: Path, features: Path, base: Path, name: str, *extra: str) -> Path:
    """A 2-step run of the tiny model, no evaluation, with options beside the reference run's."""
    out = work / name
    _python(*_train(out, features, base), "--max_steps", "2", "--eval_strategy", "no", "--final_eval", "false",
            *extra, env=_env(work))
    return out


@pytest.fixture(scope="module")
def reference_run(work, features, tiny_base) -> Path:
    out = work / "run-reference"
    _python(*_train(out, features, tiny_base), env=_env(work))
    return out


def _losses(run: Path) -> dict[int, float]:
    state = json.loads((run / "trainer_state.json").read_text())
    return {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}


# --- conversion ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ct2_round_trip_keeps_weights_and_greedy_decode(work, processor):
    """transformers → ctranslate2's own TransformersConverter → training.convert → the same model."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see _env
    try:
        _round_trip(work, processor)
    finally:
        torch.set_num_threads(threads)


def _round_trip(work, processor):
    import ctranslate2
    import torch

    from training.convert import ct2_to_transformers

    original = tiny_whisper(processor, seed=1)
    with torch.no_grad():  # larger weights (positions too) than the default init: greedy decoding varies
        for parameter in original.parameters():
            parameter.normal_(0, 0.5 if parameter.dim() == 1 else 0.2)
    original.save_pretrained(work / "rt-hf")
    processor.save_pretrained(work / "rt-hf")
    ctranslate2.converters.TransformersConverter(str(work / "rt-hf"), copy_files=["tokenizer.json"]).convert(
        str(work / "rt-ct2"), quantization="float16")

    restored, restored_processor = ct2_to_transformers(work / "rt-ct2")
    expected = {k: v.half().float() for k, v in original.state_dict().items()}  # the CT2 model is float16
    actual = restored.state_dict()
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name].dtype == torch.float32
        assert torch.equal(actual[name], value), name
    assert restored.proj_out.weight.data_ptr() == restored.model.decoder.embed_tokens.weight.data_ptr()
    assert restored.config.encoder_attention_heads == 4 and restored.config.decoder_ffn_dim == 128

    torch.manual_seed(123)
    features = torch.randn(1, 80, 3000)
    reference = original.half().float().generate(features, language="zh", task="transcribe", max_new_tokens=12)
    assert torch.equal(restored.generate(features, language="zh", task="transcribe", max_new_tokens=12), reference)
    assert len(set(reference[0].tolist())) > 1
    # ctranslate2 itself decodes the same tokens from the same weights (float32 compute on both sides).
    ct2 = ctranslate2.models.Whisper(str(work / "rt-ct2"), compute_type="float32")
    prompt = restored_processor.tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|zh|>", "<|transcribe|>", "<|notimestamps|>"])
    ct2_ids = ct2.generate(ctranslate2.StorageView.from_array(features.numpy()), [prompt], beam_size=1,
                           max_length=24, suppress_blank=False)[0].sequences_ids[0]
    n = min(len(ct2_ids), reference.shape[1])
    assert n >= 6 and ct2_ids[:n] == reference[0, :n].tolist()

    # int8 models (what export writes for CPU) come back de-quantised: within half a step of the scale.
    ctranslate2.converters.TransformersConverter(str(work / "rt-hf"), copy_files=["tokenizer.json"]).convert(
        str(work / "rt-ct2-int8"), quantization="int8")
    dequantised = ct2_to_transformers(work / "rt-ct2-int8")[0].state_dict()
    for name, value in original.state_dict().items():
        step = value.abs().amax(dim=tuple(range(1, value.dim())), keepdim=True) / 127 if value.dim() > 1 else 0
        tolerance = step / 2 + 1e-3 * value.abs() + 1e-6 if value.dim() > 1 else value.abs() * 1e-3 + 1e-3
        assert bool((dequantised[name] - value).abs().le(tolerance).all()), name


def test_int8_aware_training_computes_what_ctranslate2_int8_computes(work, processor, features):
    """--int8_aware: rounding per row with a straight-through gradient, and a model that then
    computes much closer to CTranslate2's own int8 model than the float model does."""
    import ctranslate2
    import numpy as np
    import torch

    from training import encoder_cache, int8_aware

    torch.manual_seed(0)
    x = torch.randn(5, 64, requires_grad=True)
    rounded = int8_aware.fake_quantize_rows(x)
    steps = rounded.detach() / (x.detach().abs().amax(dim=-1, keepdim=True) / 127)
    assert torch.allclose(steps, steps.round(), atol=1e-3) and steps.abs().amax(dim=-1).round().eq(127).all()
    assert 0 < (rounded - x).abs().max() <= x.abs().max() / 127 / 2 + 1e-6
    (rounded * torch.arange(64.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(64.0).expand(5, 64))  # straight through

    model = tiny_whisper(processor, seed=2).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.5 if parameter.dim() == 1 else 0.2)
    folder = work / "int8-aware-hf"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    ctranslate2.converters.TransformersConverter(str(folder), copy_files=["tokenizer.json"]).convert(
        str(work / "int8-aware-ct2"), quantization="int8")
    ct2 = ctranslate2.models.Whisper(str(work / "int8-aware-ct2"), device="cpu", compute_type="int8")
    mel = torch.randn(1, 80, 3000)
    ct2_int8 = torch.from_numpy(np.array(ct2.encode(ctranslate2.StorageView.from_array(mel.numpy()))))
    with torch.no_grad():
        float_out = model.get_encoder()(mel).last_hidden_state
        state = {k: v.clone() for k, v in model.state_dict().items()}
        float_key = encoder_cache.cache_key(model.get_encoder(), features, "train", layer=1)
        assert int8_aware.enable(model) == sum(isinstance(m, torch.nn.Linear) for m in model.modules()) + 3
        aware_out = model.get_encoder()(mel).last_hidden_state
    float_gap, aware_gap = (float_out - ct2_int8).abs().mean(), (aware_out - ct2_int8).abs().mean()
    # Measured: 1.5e-5 against 3.3e-3 (rounding only the linear layers, not the convolutions: 3.1e-3).
    assert aware_gap < float_gap / 20, (float(aware_gap), float(float_gap))
    # Weights untouched and saved as before: only the forward methods changed.
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    # A cache computed through the rounding is not mistaken for a float one.
    assert encoder_cache.cache_key(model.get_encoder(), features, "train", layer=1) != float_key


def test_processor_tokenizer_lays_out_whisper_tokens_as_the_model(processor):
    """The converter's tokenizer (featurize.labels.load_tokenizer's repair): the model's 51865 ids,
    timestamps right after the special tokens (where HF's Whisper code puts timestamp_begin), a pad
    token, and featurize's timed labels decode back."""
    from featurize.labels import LabelMaker

    tokenizer = processor.tokenizer
    assert len(tokenizer) == 51865 and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>", "<|zh|>", "<|notimestamps|>",
                                            "<|0.00|>", "<|30.00|>"]) == [50257, 50258, 50260, 50363, 50364, 51864]
    assert tokenizer.all_special_ids[-1] + 1 == tokenizer.convert_tokens_to_ids("<|0.00|>")  # timestamp_begin
    ids = LabelMaker(tokenizer, timestamps=True).ids("今天天气很好，我们去公园吧。", 2.5)
    assert tokenizer.decode(ids, decode_with_timestamps=True) == \
        "<|startoftranscript|><|zh|><|transcribe|><|0.00|>今天天气很好，我们去公园吧。<|2.50|><|endoftext|>"


# --- data, metrics, checkpoint bookkeeping (fast) --------------------------------------------------


def test_label_forms_and_collator(processor):
    from training.data import LabelForms, WhisperCollator

    tok = processor.tokenizer
    forms = LabelForms.from_tokenizer(tok)
    prefix = tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|zh|>", "<|transcribe|>", "<|notimestamps|>"])
    plain = [*prefix, *tok("你好。", add_special_tokens=False).input_ids, tok.eos_token_id]
    timed = forms.timestamped(plain, 1.5)
    assert tok.decode(timed, decode_with_timestamps=True) == \
        "<|startoftranscript|><|zh|><|transcribe|><|0.00|>你好。<|1.50|><|endoftext|>"
    assert forms.plain(timed) == plain and forms.timestamped(timed, 1.5) == timed
    assert forms.timestamped(plain, 99.0)[-2] == tok.convert_tokens_to_ids("<|30.00|>")

    # A row that featurize timed sentence by sentence gets that form wherever the timestamped one is chosen.
    from training.data import WhisperExamples

    sentences = [*prefix[:3], tok.convert_tokens_to_ids("<|0.00|>"), *tok("你好。", add_special_tokens=False).input_ids,
                 tok.convert_tokens_to_ids("<|0.80|>"), tok.convert_tokens_to_ids("<|1.10|>"),
                 *tok("再见。", add_special_tokens=False).input_ids, tok.convert_tokens_to_ids("<|2.00|>"), tok.eos_token_id]
    rows = [{"id": str(i), "duration": 2.0, "labels": plain, "timed_labels": sentences} for i in range(40)]
    chosen = [WhisperExamples(rows, forms, timestamp_fraction=0.5).labels(r) for r in rows]
    assert {tuple(c) for c in chosen} == {tuple(plain), tuple(sentences)}
    assert WhisperExamples(rows, forms, timestamp_fraction=1.0).labels({**rows[0], "timed_labels": []}) == \
        forms.timestamped(plain, 2.0)

    import numpy as np

    batch = WhisperCollator(tok.convert_tokens_to_ids("<|startoftranscript|>"), tok.pad_token_id)(
        [{"input_features": np.zeros((80, 3000), np.float32), "labels": plain},
         {"input_features": np.ones((80, 3000), np.float32), "labels": timed}])
    assert batch["input_features"].shape == (2, 80, 3000)
    assert batch["labels"][0].tolist() == plain[1:] + [-100] * (len(timed) - len(plain))
    assert batch["decoder_input_ids"][1].tolist() == timed[:-1]  # shifted right, starts with <|sot|>


def test_metrics_use_app_normalisation():
    from training.metrics import score

    # Traditional characters and punctuation only: no error after normalisation.
    result = score(["今天天气很好。", "我爱你"], ["今天天氣很好", "我愛你！"])
    assert result == {"cer": 0.0, "wer": 0.0}
    result = score(["今天天气很好"], ["今天天气不好"])
    assert result["cer"] == pytest.approx(1 / 6) and result["wer"] > result["cer"]


def test_checkpoint_completeness(tmp_path):
    from training import checkpoints

    for step in (2, 4, 6):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"x" * 100)
        if step < 6:  # checkpoint-6: written, never confirmed
            checkpoints.mark_complete(folder, step)
    assert checkpoints.latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"x" * 10)  # torn write
    assert checkpoints.latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    removed = checkpoints.discard_incomplete(tmp_path)
    assert sorted(p.name for p in removed) == ["checkpoint-4", "checkpoint-6"]
    for step in (8, 10):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text("{}")
        checkpoints.mark_complete(folder, step)
    checkpoints.rotate(tmp_path, keep_last=2)
    assert [p.name for _, p in checkpoints.checkpoint_folders(tmp_path)] == ["checkpoint-8", "checkpoint-10"]


def test_arguments_config_file_and_command_line(tmp_path):
    from training.arguments import build_parser, parse, resolved_options

    help_text = build_parser().format_help()
    for option in ("--config", "--data", "--base", "--out", "--freeze_encoder", "--lora", "--apply_spec_augment",
                   "--learning_rate", "--warmup_steps", "--max_steps", "--label_smoothing_factor",
                   "--save_steps", "--save_total_limit", "--timestamp_fraction", "--precision"):
        assert option in help_text, option
    config = tmp_path / "run.yaml"
    config.write_text("data: /features\nout: /runs/a\nno_such_option: 1\n")
    with pytest.raises(SystemExit):
        parse(["--config", str(config)])
    config.write_text("data: /features\nout: /runs/a\nfreeze_encoder: true\nlearning_rate: 3.0e-5\n"
                      "max_steps: 100\n")
    model_args, data_args, train_args, _ = parse(["--config", str(config), "--max_steps", "7"])
    assert (data_args.data, train_args.output_dir, model_args.freeze_encoder) == ("/features", "/runs/a", True)
    assert (train_args.learning_rate, train_args.max_steps) == (3e-5, 7)  # command line wins
    assert not train_args.bf16 and not train_args.fp16  # CPU: fp32
    saved = tmp_path / "run_config.json"
    saved.write_text(json.dumps(resolved_options(model_args, data_args, train_args)))
    again = parse(["--config", str(saved)])
    assert resolved_options(*again[:3]) == resolved_options(model_args, data_args, train_args)


# --- training, resume, export (subprocesses, as a user runs them) ----------------------------------


@pytest.mark.slow
def test_training_loss_falls_and_outputs_are_complete(reference_run):
    from training.checkpoints import checkpoint_folders, is_complete

    losses = _losses(reference_run)
    assert sorted(losses) == list(range(1, 9))
    assert (losses[7] + losses[8]) / 2 < losses[1] - 0.2
    state = json.loads((reference_run / "trainer_state.json").read_text())
    kept = {p.name for _, p in checkpoint_folders(reference_run)}  # the last 2, and the best by eval CER
    assert kept == {"checkpoint-6", "checkpoint-8", Path(state["best_model_checkpoint"]).name}
    assert all(is_complete(p) for _, p in checkpoint_folders(reference_run))
    final = json.loads((reference_run / "eval_full_results.json").read_text())
    assert {"eval_full_cer", "eval_full_wer", "eval_full_loss"} <= set(final)
    assert [e["step"] for e in state["log_history"] if "eval_cer" in e] == [4, 8]  # capped evals
    assert json.loads((reference_run / "run_config.json").read_text())["max_steps"] == 8


@pytest.mark.slow
def test_l2sp_run_pulls_every_trained_weight_back_to_the_base(work, features, tiny_base, reference_run):
    import torch
    from safetensors.torch import load_file

    # lr * strength far above 1: each step's update is taken back whole, so the run ends on the base.
    out = _two_step_run(work, features, tiny_base, "run-l2sp", "--l2sp_strength", "1e9")
    losses, reference = _losses(out), _losses(reference_run)
    assert losses[1] == pytest.approx(reference[1], rel=1e-4)  # same first step: the pull comes after it
    trained, base = load_file(out / "model.safetensors"), load_file(tiny_base / "model.safetensors")
    assert all(torch.allclose(trained[k], base[k], atol=1e-6) for k in base)
    assert json.loads((out / "run_config.json").read_text())["l2sp_strength"] == 1e9
    refused = _python(*_train(work / "run-l2sp-lora", features, tiny_base), "--lora", "true", "--l2sp_strength", "10",
                      env=_env(work), check=False)
    assert refused.returncode != 0 and "LoRA" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.slow
def test_int8_aware_run_trains_through_the_rounding_and_saves_float_weights(work, features, tiny_base, reference_run):
    import torch
    from safetensors.torch import load_file

    out = _two_step_run(work, features, tiny_base, "run-int8-aware", "--int8_aware", "true")
    losses, reference = _losses(out), _losses(reference_run)
    # Same rows and weights at step 1: the rounding changes the loss a little, not the run.
    assert losses[1] != reference[1] and losses[1] == pytest.approx(reference[1], rel=0.05)
    trained, base = load_file(out / "model.safetensors"), load_file(tiny_base / "model.safetensors")
    assert not torch.equal(trained["model.encoder.conv1.weight"], base["model.encoder.conv1.weight"])  # straight through
    # The saved weights stay float: they are not on the int8 grid the forward pass rounds them to.
    weight = trained["model.decoder.layers.0.fc1.weight"]
    steps = weight / (weight.abs().amax(dim=1, keepdim=True) / 127)
    assert not torch.allclose(steps, steps.round(), atol=1e-3)


@pytest.mark.slow
def test_sigkill_during_checkpoint_and_training_then_rerun_resumes(work, features, tiny_base, reference_run):
    from training.checkpoints import COMPLETE_MARKER

    out = work / "run-killed"
    command = [sys.executable, *_train(out, features, tiny_base, "--final_eval", "false")]

    # 1. Killed after Trainer wrote checkpoint-4 but before it was confirmed complete.
    killed = [sys.executable, "-c", KILL_BEFORE_MARK.format(step=4), *command[3:]]
    proc = subprocess.run(killed, cwd=ROOT, env=_env(work), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (out / "checkpoint-4" / "trainer_state.json").is_file()
    assert not (out / "checkpoint-4" / COMPLETE_MARKER).exists()
    (out / "checkpoint-4" / "model.safetensors").write_bytes(b"torn")  # as a half-written file would be

    # 2. Rerun: resumes from checkpoint-2; SIGKILL from outside once checkpoint-4 is complete.
    proc = subprocess.Popen(command, cwd=ROOT, env=_env(work), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.time() + 240
    while not (out / "checkpoint-4" / COMPLETE_MARKER).exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before checkpoint-4"
        time.sleep(0.05)
    proc.kill()
    log = proc.communicate()[0]
    assert "resuming from" in log and "checkpoint-2" in log and "discarded incomplete checkpoint checkpoint-4" in log
    assert not (out / "train_results.json").exists()

    # 3. Rerun: continues from the newest complete checkpoint to the same final step, with the same
    #    losses and weights as the uninterrupted run (optimizer, scheduler, RNG and data position restored).
    proc = _python(*command[1:], env=_env(work))
    assert "resuming from" in proc.stdout
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 8
    reference = _losses(reference_run)
    for step, loss in _losses(out).items():
        assert loss == pytest.approx(reference[step], abs=1e-6), step
    from safetensors.torch import load_file

    final, expected = load_file(out / "model.safetensors"), load_file(reference_run / "model.safetensors")
    assert max((final[k] - expected[k]).abs().max().item() for k in expected) < 1e-6


@pytest.mark.slow
def test_exported_tiny_model_loads_in_faster_whisper(work, reference_run, zh_synth):
    from faster_whisper import WhisperModel, decode_audio

    from app.speech.audio import SAMPLE_RATE

    out = work / "export-tiny"
    _python("-m", "training.export", str(reference_run / "checkpoint-8"), "--out", str(out), env=_env(work))
    for name in ("model.bin", "config.json", "tokenizer.json", "preprocessor_config.json", "README.md",
                 "transformers/model.safetensors", "transformers/processor_config.json"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "eval_full_cer" in card and "cv-mini" in card and "| max_steps | 8 |" in card
    model = WhisperModel(str(out), device="cpu", compute_type="int8")
    audio = decode_audio(str(zh_synth / "clips" / "hsk1-0001.mp3"))
    segments, info = model.transcribe(audio, language="zh", beam_size=1, without_timestamps=True)
    tokens = [t for s in segments for t in s.tokens]  # a random model's text is noise, but must decode
    assert model.model.n_mels == 80 and model.model.is_multilingual
    assert all(0 <= t < 51865 for t in tokens)
    assert info.duration == pytest.approx(audio.size / SAMPLE_RATE)


@pytest.mark.slow
def test_lora_frozen_encoder_run_merges_at_export(work, features, tiny_base):
    """LoRA adapters on the decoder (frozen encoder) with SpecAugment; export merges them away."""
    import torch
    from transformers import WhisperForConditionalGeneration

    out = work / "run-lora"
    _python("-m", "training", "--data", str(features), "--base", str(tiny_base), "--out", str(out),
            "--lora", "true", "--freeze_encoder", "true", "--apply_spec_augment", "true", "--lora_r", "4",
            "--max_steps", "2", "--save_steps", "2", "--per_device_train_batch_size", "4", "--learning_rate", "1e-2",
            "--eval_strategy", "no", "--final_eval", "false", "--dataloader_num_workers", "1",
            "--label_smoothing_factor", "0.1", "--disable_tqdm", "true", env=_env(work))
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
    exported = work / "export-lora"
    _python("-m", "training.export", str(out / "checkpoint-2"), "--out", str(exported), "--quantization", "float32",
            env=_env(work))
    merged = WhisperForConditionalGeneration.from_pretrained(exported / "transformers").state_dict()
    base = WhisperForConditionalGeneration.from_pretrained(tiny_base).state_dict()
    assert set(merged) == set(base)  # no lora_A/lora_B left
    assert all(torch.equal(merged[k], base[k]) for k in base if ".encoder." in k)
    assert any(not torch.equal(merged[k], base[k]) for k in base if ".decoder.layers." in k)
    assert (exported / "model.bin").is_file()


@pytest.mark.slow
def test_exported_embedded_base_transcribes_through_app_cli(work, zh_synth):
    """The embedded base, converted to transformers and exported again (int8), still transcribes
    a zh-synth clip correctly through `python -m app transcribe`."""
    from app.language.text import cer
    from tests.conftest import read_split

    env = _env(work)
    _python("-m", "training.convert", "--out", str(work / "base-hf"), env=env)
    _python("-m", "training.export", str(work / "base-hf"), "--out", str(work / "base-export"), env=env)
    row = next(r for r in read_split("train") if r["path"] == "hsk1-0003.mp3")
    subtitles = work / "cli-out"
    _python("-m", "app", "transcribe", str(zh_synth / "clips" / row["path"]), "--model", str(work / "base-export"),
            "--english", "none", "--formats", "txt", "-o", str(subtitles), env=env)
    hanzi = (subtitles / "hsk1-0003.txt").read_text(encoding="utf-8").splitlines()[0]
    assert cer([row["sentence"]], [hanzi]) == 0.0, hanzi


# --- encoder-output cache (decoder-only training on CPU) -------------------------------------------


def test_encoder_cache_matches_the_encoder_and_resumes_after_a_crash(work, features, processor, monkeypatch):
    import numpy as np
    import torch

    from training import encoder_cache
    from training.data import load_split

    model = tiny_whisper(processor)
    whole = encoder_cache.build(model, features, "train", work / "cache-whole", batch_size=4)
    rows = load_split(features, "train")
    assert whole.ids == list(rows.with_format(None)["id"]) and len(whole) == TRAIN_CLIPS
    with torch.inference_mode():
        expected = model.get_encoder()(torch.from_numpy(np.stack(rows[:2]["input_features"]))).last_hidden_state
    assert torch.allclose(torch.stack([whole[0], whole[1]]), expected, atol=2e-3, rtol=2e-3)  # float16 storage

    # A crash after the first batch leaves progress behind; the rerun computes only the rest.
    encoder = model.get_encoder()
    real_forward, calls = encoder.forward, []

    def crash_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(encoder, "forward", crash_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        encoder_cache.build(model, features, "train", work / "cache-crash", batch_size=4)
    (folder,) = (work / "cache-crash").iterdir()
    assert json.loads((folder / "progress.json").read_text()) == {"rows": 4} and not (folder / "done.json").exists()
    monkeypatch.setattr(encoder, "forward", real_forward)
    resumed = encoder_cache.build(model, features, "train", work / "cache-crash", batch_size=4)
    assert np.array_equal(resumed.array, whole.array)

    # Other weights: another cache folder, never the stale one.
    other = tiny_whisper(processor, seed=1)
    assert encoder_cache.cache_key(other.get_encoder(), features, "train") != folder.name.split("-", 1)[1]


CACHE_RUN_ARGS = ["--max_steps", "2", "--save_steps", "2", "--per_device_train_batch_size", "4", "--learning_rate",
                  "1e-3", "--warmup_steps", "0", "--logging_steps", "1", "--eval_strategy", "no",
                  "--dataloader_num_workers", "0", "--train_share", "0.5", "--disable_tqdm", "true"]


def _cached_and_frozen_runs(work: Path, features: Path, tiny_base: Path, name: str, extra: list[str],
                            cached_extra: list[str], frozen_extra: list[str]) -> Path:
    """A 2-step run on cached encoder outputs and the same run through the frozen encoder: the same rows
    in the same order, so their losses differ only by the cache's float16 rounding. Returns the cached run."""
    cached, frozen = work / f"run-{name}cached", work / f"run-{name}frozen"
    _python(*_train(cached, features, tiny_base), *CACHE_RUN_ARGS, *extra, "--cache_encoder_outputs", "true",
            *cached_extra, env=_env(work))
    _python(*_train(frozen, features, tiny_base), *CACHE_RUN_ARGS, *extra, "--freeze_encoder", "true",
            *frozen_extra, env=_env(work))
    cached_losses, frozen_losses = _losses(cached), _losses(frozen)
    assert sorted(cached_losses) == [1, 2]
    for step in (1, 2):
        assert cached_losses[step] == pytest.approx(frozen_losses[step], rel=1e-2)
    return cached


@pytest.mark.slow
def test_cached_encoder_run_trains_the_decoder_only_with_the_same_loss(work, features, tiny_base):
    from safetensors.torch import load_file

    no_eval = ["--final_eval", "false"]
    cached = _cached_and_frozen_runs(work, features, tiny_base, "", no_eval, [], [])
    assert any((features / "encoder-cache").glob("train-*/done.json"))
    trained, base = load_file(cached / "model.safetensors"), load_file(tiny_base / "model.safetensors")
    assert all((trained[k] == base[k]).all() for k in base if k.startswith("model.encoder."))
    assert any(not (trained[k] == base[k]).all() for k in base if k.startswith("model.decoder.layers."))
    config = json.loads((cached / "run_config.json").read_text())
    assert config["cache_encoder_outputs"] is True and config["train_share"] == 0.5


def test_encoder_layer_input_cache_matches_the_encoders_hidden_states(work, features, processor):
    import numpy as np
    import torch

    from training import encoder_cache
    from training.data import load_split

    model = tiny_whisper(processor)
    cached = encoder_cache.build(model, features, "train", work / "cache-layer", batch_size=4, layer=1)
    (folder,) = (work / "cache-layer").iterdir()
    assert folder.name.startswith("train-layer1-") and cached.layer == 1
    rows = load_split(features, "train")
    with torch.inference_mode():
        hidden = model.get_encoder()(torch.from_numpy(np.stack(rows[:2]["input_features"])),
                                     output_hidden_states=True).hidden_states
    assert torch.allclose(torch.stack([cached[0], cached[1]]), hidden[1], atol=2e-3, rtol=2e-3)
    # The top of the encoder run on the cached input gives the encoder's output.
    from training.model import EncoderLayerInput, WhisperFromEncoderLayer

    model.__class__, model.first_encoder_layer = WhisperFromEncoderLayer, 1
    with torch.inference_mode():
        finished = model.finish_encoder(EncoderLayerInput(last_hidden_state=torch.stack([cached[0], cached[1]])))
        expected = model.get_encoder()(torch.from_numpy(np.stack(rows[:2]["input_features"]))).last_hidden_state
    assert torch.allclose(finished.last_hidden_state, expected, atol=1e-2, rtol=1e-2)
    # The key follows the weights below the layer only: training the top layer keeps the cache valid.
    key = folder.name.split("-", 2)[2]
    assert encoder_cache.cache_key(model.get_encoder(), features, "train", layer=1) == key
    with torch.no_grad():
        model.get_encoder().layers[1].fc1.weight.add_(1.0)
        assert encoder_cache.cache_key(model.get_encoder(), features, "train", layer=1) == key
        model.get_encoder().layers[0].fc1.weight.add_(1.0)
        assert encoder_cache.cache_key(model.get_encoder(), features, "train", layer=1) != key


@pytest.mark.slow
def test_cached_layer_input_run_trains_the_top_encoder_layer_with_the_same_loss(work, features, tiny_base):
    from safetensors.torch import load_file

    # The cached run also evaluates dev at the end: generate() through the cached layer input.
    cached = _cached_and_frozen_runs(work, features, tiny_base, "layer-", ["--train_encoder_top_layers", "1"],
                                     ["--max_eval_samples", "2"], ["--final_eval", "false"])
    assert any((features / "encoder-cache").glob("train-layer1-*/done.json"))
    assert any((features / "encoder-cache").glob("dev-layer1-*/done.json"))
    # The final evaluation ran on the cached outputs: a random tiny model gets most characters wrong.
    assert json.loads((cached / "eval_full_results.json").read_text())["eval_full_cer"] > 0.5
    trained, base = load_file(cached / "model.safetensors"), load_file(tiny_base / "model.safetensors")
    below = [k for k in base if k.startswith(("model.encoder.layers.0.", "model.encoder.conv", "model.encoder.embed"))]
    assert below and all((trained[k] == base[k]).all() for k in below)
    top = [k for k in base if k.startswith("model.encoder.layers.1.")]
    assert all(not (trained[k] == base[k]).all() for k in top if k.endswith("fc1.weight"))
    assert any(not (trained[k] == base[k]).all() for k in base if k.startswith("model.decoder.layers."))
    # Saved as a plain Whisper: from_pretrained and CTranslate2's converter know the folder.
    assert json.loads((cached / "config.json").read_text())["architectures"] == ["WhisperForConditionalGeneration"]


@pytest.mark.slow
def test_frozen_decoder_run_trains_the_encoder_only(work, features, tiny_base):
    from safetensors.torch import load_file

    run = _two_step_run(work, features, tiny_base, "run-frozen-decoder", "--freeze_decoder", "true",
                        "--learning_rate", "1e-3", "--warmup_steps", "0")
    trained, base = load_file(run / "model.safetensors"), load_file(tiny_base / "model.safetensors")
    decoder = [k for k in base if k.startswith(("model.decoder.", "proj_out."))]
    assert decoder and all((trained[k] == base[k]).all() for k in decoder if k in trained)
    assert any(not (trained[k] == base[k]).all() for k in base if k.startswith("model.encoder.layers."))
    refused = _python("-m", "training", "--data", str(features), "--out", str(work / "nothing"),
                      "--freeze_decoder", "true", "--freeze_encoder", "true", env=_env(work), check=False)
    assert refused.returncode != 0 and refused.stderr.strip().splitlines()[-1].startswith("error: --freeze-decoder")


def test_error_kinds_split_character_errors_the_way_a_learner_would():
    from app.language.text import char_errors
    from training.evaluate import error_kinds

    cases = {
        ("他在看电视。", "他在看电视"): {},
        ("他去银行汇款。", "他去银行会馆"): {"homophone": 1, "other_syllable": 1},  # huì=huì, kuǎn≠guǎn
        ("今天是几月几日？", "今天是几热几日"): {"other_syllable": 1},
        ("他买了书。", "他卖了书"): {"tone": 1},  # mǎi / mài
        ("我们是同学。", "我们同学"): {"deletion": 1},
        ("读者多了。", "读者咱们多了"): {"insertion": 2},
        ("", "啊"): {"insertion": 1},
    }
    for (reference, hypothesis), expected in cases.items():
        kinds = error_kinds(reference, hypothesis)
        assert {k: v for k, v in kinds.items() if v} == expected, (reference, hypothesis, kinds)
        assert sum(kinds.values()) == char_errors(reference, hypothesis)


def test_seeded_subset_spreads_over_a_sorted_split():
    from training.data import seeded_subset

    chosen = seeded_subset(3000, 0.25, seed=42)
    assert len(chosen) == 750 and chosen == sorted(set(chosen)) and chosen == seeded_subset(3000, 0.25, seed=42)
    assert chosen[0] < 50 and chosen[-1] > 2950  # not the first 750 of a level-sorted split


# --- training.evaluate ------------------------------------------------------------------------------


def test_evaluate_ct2_on_cv_layout_and_transformers_on_shards(work, features, tiny_base, zh_synth):
    env = _env(work)
    table = work / "eval.csv"
    proc = _python("-m", "training.evaluate", "--model", "embedded", "--data", str(zh_synth), "--split", "dev",
                   "--limit", "3", "--csv", str(table), "--json", str(work / "eval.json"), env=env)
    summary = json.loads((work / "eval.json").read_text())
    assert summary["clips"] == 3 and summary["decoder"] == "faster-whisper (app)" and summary["cer"] <= 0.2
    assert summary["rtf"] > 0 and "CER" in proc.stdout
    with open(table, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    dev = read_split("dev")[:3]
    assert [r["clip"] for r in rows] == [r["path"] for r in dev]
    assert [int(r["ref_chars"]) for r in rows] == [len(normalize_for_cer(r["sentence"])) for r in dev]
    kinds = ("homophone", "tone", "other_syllable", "insertion", "deletion")
    assert all(sum(int(r[k]) for k in kinds) == int(r["char_errors"]) for r in rows)
    assert sum(summary["errors"].values()) == sum(int(r["char_errors"]) for r in rows)

    # A transformers folder on featurized shards: generate path; a random tiny model scores badly but runs.
    _python("-m", "training.evaluate", "--model", str(tiny_base), "--data", str(features), "--split", "dev",
            "--beam-size", "1", "--json", str(work / "eval-tiny.json"), env=env)
    tiny = json.loads((work / "eval-tiny.json").read_text())
    assert tiny["clips"] == DEV_CLIPS and tiny["decoder"] == "transformers generate" and tiny["cer"] > 0.5

    for bad in (["--data", str(features), "--split", "nope"], ["--data", str(work / "missing")]):
        proc = _python("-m", "training.evaluate", *bad, env=env, check=False)
        assert proc.returncode == 1 and proc.stderr.strip().startswith("error:")
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_eval_real_scores_the_final_model_with_the_apps_decoder(work, features):
    """--eval-real: after training, the final model is exported and scored on a Common Voice layout
    folder (the zh-synth mini set's dev half stands in for `training.real_speech fetch`'s folder).
    The embedded base barely moved (2 steps at 1e-6) must still read these clips (a random tiny
    Whisper cannot be decoded: CTranslate2's alignment runs out of memory on its output)."""
    out = work / "run-eval-real"
    _python("-m", "training", "--data", str(features), "--base", "embedded", "--out", str(out), "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--learning_rate", "1e-6", "--eval_strategy", "no",
            "--final_eval", "false", "--eval-real", str(work / "cv-mini"), env=_env(work))
    result = json.loads((out / "eval_real_results.json").read_text())
    assert result["model"] == str(out / "eval-real-ct2") and result["decoder"] == "faster-whisper (app)"
    assert result["clips"] == DEV_CLIPS and result["cer"] < 0.2
    assert len((out / "eval_real.csv").read_text().splitlines()) == DEV_CLIPS + 1
