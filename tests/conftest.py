"""Shared fixtures: the zh-synth corpus beside the checkout, the embedded model, a running app."""

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


def read_split(split: str) -> list[dict]:
    with open(DATA / f"{split}.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def clip_path(row: dict) -> Path:
    return DATA / "clips" / row["path"]


def joined_audio(rows: list[dict], gap_seconds: float) -> np.ndarray:
    """The rows' clips decoded and joined, `gap_seconds` of silence after each (16 kHz mono float32)."""
    from app.audio import SAMPLE_RATE, load_audio

    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([np.concatenate([load_audio(clip_path(r)), gap]) for r in rows])


@pytest.fixture(scope="session")
def zh_synth() -> Path:
    if not (DATA / "test.tsv").is_file():
        pytest.fail(f"zh-synth corpus not found at {DATA} (set ZIMU_TEST_DATA)")
    return DATA


@pytest.fixture(scope="session")
def model():
    from app.model import load_model

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
    folder = tmp_path_factory.mktemp("bad")
    empty = folder / "empty.mp3"
    empty.write_bytes(b"")
    random = folder / "random.mp3"  # seeded, without 0xFF: no MPEG frame sync by chance
    random.write_bytes(np.random.default_rng(1234).integers(0, 255, 40_000, dtype=np.uint8).tobytes())
    silence = folder / "silence.wav"
    with wave.open(str(silence), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(3 * 16000, dtype="<i2").tobytes())
    return {"missing": folder / "missing.mp3", "empty": empty, "random": random, "silence": silence}
