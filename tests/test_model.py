import hashlib

import pytest

from app import model as model_module
from app.errors import UserError


def test_embedded_model_is_assembled_verified_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("ZIMU_CACHE", str(tmp_path))
    folder = model_module.embedded_model_dir()
    assert folder.parent == tmp_path
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    digest = hashlib.sha256(folder.joinpath("model.bin").read_bytes()).hexdigest()
    assert digest == model_module.EMBEDDED_SHA256
    mtime = folder.joinpath("model.bin").stat().st_mtime_ns
    assert model_module.embedded_model_dir() == folder  # second start: reused, not rebuilt
    assert folder.joinpath("model.bin").stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p != folder]  # no staging folder left behind


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ZIMU_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(model_module.MODEL_ENV, raising=False)
    assert model_module.resolve_model(None).endswith(model_module.EMBEDDED_NAME)
    monkeypatch.setenv(model_module.MODEL_ENV, "Systran/faster-whisper-small")
    assert model_module.resolve_model(None) == "Systran/faster-whisper-small"
    assert model_module.resolve_model(str(model_module.embedded_model_dir())).endswith(model_module.EMBEDDED_NAME)
    with pytest.raises(UserError, match="not a CTranslate2 Whisper model folder"):
        model_module.resolve_model(str(tmp_path))


def test_offline_hub_id_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as err:
        model_module.load_model("someone/not-a-real-whisper-ct2", device="cpu", compute_type="int8")
    message = str(err.value)
    assert "\n" not in message and "could not load model 'someone/not-a-real-whisper-ct2'" in message


def test_model_is_loaded_once_and_shared():
    a = model_module.load_model(None, "cpu", "int8")
    b = model_module.load_model(None, "cpu", "int8")
    assert a is b


def test_compute_type_defaults():
    assert model_module.default_compute_type("cpu") == "int8"
    assert model_module.default_compute_type("cuda") == "float16"
