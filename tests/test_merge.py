"""training.merge (WiSE-FT) on two tiny random Whispers with the real vocabulary: alpha 0 gives the
base's weights, 1 the tuned model's, 0.5 their midpoint; the export loads in CTranslate2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("ctranslate2")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.model  # loads the embedded base (its processor and generation settings)


@pytest.fixture(scope="module")
def processor():
    """The embedded base's processor, with its generation settings (languages, alignment heads)."""
    from training.model import load_base

    model, processor = load_base("embedded")
    processor.generation_config = model.generation_config
    return processor


def tiny(processor, seed: int, folder: Path, d_model: int = 64) -> Path:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=len(processor.tokenizer), d_model=d_model, encoder_layers=2,
                           decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                           encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=80,
                           max_source_positions=1500, max_target_positions=448,
                           decoder_start_token_id=processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
                           pad_token_id=50257, bos_token_id=50257, eos_token_id=50257)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = processor.generation_config
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory, processor):
    work = tmp_path_factory.mktemp("merge")
    return work, tiny(processor, 0, work / "base"), tiny(processor, 1, work / "tuned")


def _state(folder: Path) -> dict:
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration.from_pretrained(str(folder), dtype="float32").state_dict()


def _merge(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "training.merge", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_interpolate_endpoints_and_midpoint(pair):
    from training.merge import interpolate

    _, base, tuned = pair
    base_state, tuned_state = _state(base), _state(tuned)
    name = "model.decoder.layers.0.fc1.weight"
    assert not torch.equal(base_state[name], tuned_state[name])
    for alpha, expected in ((0.0, base_state), (1.0, tuned_state)):
        merged = interpolate(base_state, tuned_state, alpha)
        assert all(torch.equal(merged[k], expected[k]) for k in merged)
    merged = interpolate(base_state, tuned_state, 0.5)
    for key, value in merged.items():
        midpoint = ((base_state[key].double() + tuned_state[key].double()) / 2).to(value.dtype)
        assert torch.equal(value, midpoint), key


def test_each_half_takes_its_own_alpha(pair):
    """--alpha-encoder 0 --alpha-decoder 1: the base's encoder under the tuned decoder, and the output
    projection (tied to the decoder's token embedding) goes with the decoder."""
    from training.merge import interpolate

    _, base, tuned = pair
    base_state, tuned_state = _state(base), _state(tuned)
    merged = interpolate(base_state, tuned_state, 0.5, alpha_encoder=0.0, alpha_decoder=1.0)
    encoder = [k for k in merged if k.startswith("model.encoder.")]
    rest = [k for k in merged if not k.startswith("model.encoder.")]
    assert encoder and "proj_out.weight" in rest and "model.decoder.embed_tokens.weight" in rest
    assert all(torch.equal(merged[k], base_state[k]) for k in encoder)
    assert all(torch.equal(merged[k], tuned_state[k]) for k in rest)
    assert not any(torch.equal(merged[k], tuned_state[k]) for k in encoder if k.endswith("fc1.weight"))


@pytest.mark.slow
def test_cli_writes_the_mix_and_a_ct2_model(pair):
    import ctranslate2
    import numpy as np

    work, base, tuned = pair
    base_state, tuned_state = _state(base), _state(tuned)
    for alpha in (0.0, 0.5, 1.0):
        out = work / f"alpha-{alpha}"
        proc = _merge("--base", str(base), "--tuned", str(tuned), "--alpha", str(alpha), "--out", str(out),
                      "--quantization", "float32")
        assert proc.returncode == 0, proc.stderr[-3000:]
        merged = _state(out / "transformers")
        for key, value in merged.items():
            expected = ((1 - alpha) * base_state[key].double() + alpha * tuned_state[key].double()).to(value.dtype)
            assert torch.allclose(value, expected, atol=1e-7), (alpha, key)
        # the tied output projection stays tied to the token embedding
        assert torch.equal(merged["proj_out.weight"], merged["model.decoder.embed_tokens.weight"])
        assert (out / "model.bin").is_file() and (out / "merge.json").is_file()
    model = ctranslate2.models.Whisper(str(work / "alpha-0.5"), device="cpu", compute_type="float32")
    features = ctranslate2.StorageView.from_array(np.zeros((1, 80, 3000), dtype=np.float32))
    prompt = [[50258, 50260, 50359, 50363]]  # <|startoftranscript|><|zh|><|transcribe|><|notimestamps|>
    result = model.generate(features, prompt, max_length=8)
    assert len(result) == 1 and result[0].sequences_ids


def test_refuses_other_shapes_and_alpha_outside(pair, processor, tmp_path):
    work, base, _ = pair
    other = tiny(processor, 2, tmp_path / "wide", d_model=32)
    proc = _merge("--base", str(base), "--tuned", str(other), "--alpha", "0.5", "--out", str(tmp_path / "x"))
    assert proc.returncode != 0 and "shape" in proc.stderr
    proc = _merge("--base", str(base), "--tuned", str(base), "--alpha", "1.5", "--out", str(tmp_path / "y"))
    assert proc.returncode == 2 and "[0, 1]" in proc.stderr
    proc = _merge("--base", str(base), "--tuned", str(base), "--alpha", "0.5", "--alpha-decoder", "-0.1",
                  "--out", str(tmp_path / "z"))
    assert proc.returncode == 2 and "--alpha-decoder" in proc.stderr
