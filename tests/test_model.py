import hashlib
import os
import shutil
import time
from collections import OrderedDict

import pytest

from app.speech import model as model_module
from app.base.errors import UserError


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


def test_menu_names_resolve(monkeypatch):
    monkeypatch.delenv(model_module.MODEL_ENV, raising=False)
    embedded = str(model_module.embedded_model_dir())
    for name in (None, "", "base", "BASE", " embedded "):  # "embedded": training's --base word
        assert model_module.resolve_model(name) == embedded
    for entry in model_module.MENU[1:]:
        assert model_module.resolve_model(entry.name) == entry.repo
        assert "(est.)" in entry.speed() and entry.name in entry.label()
    assert [e.name for e in model_module.MENU] == ["base", "small", "medium", "large-v3-turbo", "belle-turbo-zh"]
    assert model_module.MENU[0].measured and "(est.)" not in model_module.MENU[0].label()
    monkeypatch.setenv(model_module.MODEL_ENV, "large-v3-turbo")
    assert model_module.resolve_model(None) == "mobiuslabsgmbh/faster-whisper-large-v3-turbo"
    assert model_module.resolve_model("tiny") == "tiny"  # faster-whisper's own size names still work
    with pytest.raises(UserError, match="unknown model 'smal': choose one of base, small, medium"):
        model_module.resolve_model("smal")


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """A Hub cache with nothing in it, so no test ever loads (or starts downloading) a big model."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_offline_menu_model_is_one_clear_line(empty_hub_cache, monkeypatch):
    """HF_HUB_OFFLINE=1 (read by huggingface_hub at import, hence its constant): refused at once."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        model_module.load_model("medium", device="cpu", compute_type="int8")
    assert time.monotonic() - started < 5
    assert str(err.value) == ("model 'medium' is not downloaded yet and the Hugging Face Hub is unreachable: "
                              "connect once to download it, or use the embedded model 'base', which works offline")


def test_unreachable_hub_is_one_clear_line(empty_hub_cache):
    """No offline switch: the network is simply unreachable here (DNS fails at once). Online, the
    same made-up repo id is "not found": one line either way, and never a big download."""
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        model_module.load_model("zimu-tests/no-such-whisper-ct2", device="cpu", compute_type="int8")
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("model 'zimu-tests/no-such-whisper-ct2' ")
    assert "Hugging Face Hub is unreachable" in message or "not found on the Hugging Face Hub" in message
    assert time.monotonic() - started < 60  # huggingface_hub's own timeouts bound a silent network


def _copy_model(source, target):
    """Another CTranslate2 model folder: the embedded one under another path (model.bin hard-linked
    when the file system allows it, so the test copies 145 MB at most)."""
    target.mkdir()
    for path in source.iterdir():
        try:
            os.link(path, target / path.name)
        except OSError:
            shutil.copyfile(path, target / path.name)
    return target


@pytest.fixture
def own_model_cache(monkeypatch):
    """This test's own LRU, so evictions here do not reload models for the rest of the session."""
    monkeypatch.setattr(model_module, "_models", OrderedDict())


@pytest.mark.model
def test_lru_keeps_at_most_max_models(tmp_path, monkeypatch, own_model_cache):
    embedded = model_module.embedded_model_dir()
    first, second = _copy_model(embedded, tmp_path / "first"), _copy_model(embedded, tmp_path / "second")
    key = lambda folder: (str(folder), "cpu", "int8")  # noqa: E731

    monkeypatch.setenv(model_module.MAX_MODELS_ENV, "1")
    base = model_module.load_model("base", "cpu", "int8")
    assert model_module.loaded_models() == [key(embedded)] and base.zimu_key == key(embedded)
    other = model_module.load_model(str(first), "cpu", "int8")
    assert model_module.loaded_models() == [key(first)]  # the base was evicted
    assert model_module.load_model(None, "cpu", "int8") is not base  # ... so it is loaded anew
    assert model_module.loaded_models() == [key(embedded)] and other.zimu_key == key(first)

    monkeypatch.setenv(model_module.MAX_MODELS_ENV, "2")
    a = model_module.load_model(str(first), "cpu", "int8")
    assert model_module.load_model("embedded", "cpu", "int8") is model_module.load_model("base", "cpu", "int8")
    assert model_module.load_model(str(first), "cpu", "int8") is a  # a hit: first is now the most recent
    model_module.load_model(str(second), "cpu", "int8")
    assert model_module.loaded_models() == [key(first), key(second)]  # the least recently used (base) went


def test_bad_max_models_is_one_line(monkeypatch, own_model_cache):
    monkeypatch.setenv(model_module.MAX_MODELS_ENV, "two")
    with pytest.raises(UserError, match="ZIMU_MAX_MODELS must be a whole number"):
        model_module.load_model(None, "cpu", "int8")


def test_models_command_lists_the_menu(capsys):
    from app.cli import main

    assert main(["models"]) == 0
    table = capsys.readouterr().out
    for entry in model_module.MENU:
        assert entry.name in table and entry.size() in table and (entry.repo or "embedded") in table
    base_row = next(line for line in table.splitlines() if line.startswith("base "))
    assert " yes " in base_row  # the embedded model is assembled: it counts as already here


def test_ui_model_menu_defaults_to_the_started_model(tmp_path, monkeypatch):
    from app.ui import model_choices

    monkeypatch.delenv(model_module.MODEL_ENV, raising=False)
    choices, value = model_choices(None)
    assert value == "base" and [v for _, v in choices] == [e.name for e in model_module.MENU]
    assert model_choices("embedded")[1] == "base" and model_choices("medium")[1] == "medium"
    choices, value = model_choices(str(tmp_path))  # a folder: offered, its server path not shown
    assert value == "" and choices[0] == ("the server's own model", "")
    assert all(str(tmp_path) not in label for label, _ in choices)


@pytest.mark.model
def test_model_is_loaded_once_and_shared():
    a = model_module.load_model(None, "cpu", "int8")
    b = model_module.load_model(None, "cpu", "int8")
    assert a is b


def test_compute_type_defaults():
    assert model_module.default_compute_type("cpu") == "int8"
    assert model_module.default_compute_type("cuda") == "float16"
