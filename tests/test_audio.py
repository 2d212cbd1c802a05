"""app.speech.audio (decoding, int16/float32, writing) and the block-wise VAD that lets long audio stay int16."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.speech.audio import SAMPLE_RATE, load_audio, to_float32, to_int16, write_audio
from app.speech.batched import default_vad_options, speech_regions
from app.base.errors import UserError
from tests.conftest import clip_path, joined_audio, read_split

ROOT = Path(__file__).resolve().parent.parent


def test_decoding_gives_faster_whisper_samples_in_either_dtype(zh_synth):
    from faster_whisper.audio import decode_audio

    for row in read_split("dev")[:3]:
        stock = decode_audio(str(clip_path(row)))
        as_float = load_audio(clip_path(row))
        as_int16 = load_audio(clip_path(row), dtype=np.int16)
        assert as_float.dtype == np.float32 and as_int16.dtype == np.int16
        assert np.array_equal(stock, as_float)
        assert np.array_equal(stock, to_float32(as_int16))


def test_int16_float32_round_trip_and_clipping():
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    assert np.array_equal(to_int16(to_float32(pcm)), pcm)
    assert to_int16(pcm) is pcm
    loud = np.array([-2.0, 1.5, 0.5], dtype=np.float32)
    assert to_int16(loud).tolist() == [-32768, 32767, 16384]


@pytest.mark.parametrize("suffix", [".mp3", ".ogg", ".m4a", ".wav", ".flac"])
def test_write_audio_formats_read_back(tmp_path, suffix):
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    back = load_audio(write_audio(to_int16(tone), tmp_path / f"tone{suffix}"))
    # Lossy encoders add priming and a last partial frame (AAC: 1,792 samples here); the level is kept.
    assert abs(back.size - tone.size) < 0.15 * SAMPLE_RATE
    assert 0.2 < float(np.abs(back).max()) < 0.4


def test_write_audio_refuses_unknown_format(tmp_path):
    with pytest.raises(UserError, match="audio formats are"):
        write_audio(np.zeros(100, dtype=np.float32), tmp_path / "x.xyz")


@pytest.mark.model
def test_block_vad_equals_whole_file_vad_within_one_block(zh_synth):
    audio = joined_audio(read_split("dev")[:6], 0.6)
    options = default_vad_options()
    from faster_whisper.vad import get_speech_timestamps

    whole = get_speech_timestamps(audio, options)
    assert speech_regions(to_int16(audio), options) == whole


@pytest.mark.model
def test_block_vad_cuts_at_pauses_and_finds_the_same_speech(zh_synth):
    """Blocks of 8 s over 12 clips (0.6 s apart): every cut falls in a pause, so the same speech
    regions come back (Silero starts afresh in each block)."""
    audio = to_int16(joined_audio(read_split("dev")[:12], 0.6))
    options = default_vad_options()
    whole = speech_regions(audio, options, block_seconds=3600)
    blocks = speech_regions(audio, options, block_seconds=8)
    assert audio.size > 3 * 8 * SAMPLE_RATE
    # Same regions; an edge only trims the silent padding (speech_pad_ms) of a region beside it.
    assert len(blocks) == len(whole)
    pad = options.speech_pad_ms / 1000 * SAMPLE_RATE + 512
    for mine, stock in zip(blocks, whole):
        assert abs(mine["start"] - stock["start"]) <= pad and abs(mine["end"] - stock["end"]) <= pad
    assert all(r["end"] - r["start"] <= options.max_speech_duration_s * SAMPLE_RATE for r in blocks)


@pytest.mark.slow
def test_three_hours_of_silence_stays_under_1_2_gb(tmp_path):
    """#17: a 2-MB FLAC of 3 hours must not take the server's memory (it took 2.8 GB): decoded to
    int16, VAD in blocks. Measured in a fresh process, model loaded, as the CLI runs a job."""
    flac = tmp_path / "silence.flac"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
                    "-t", "10740", "-c:a", "flac", str(flac)], check=True)
    script = (
        "import json, resource, sys\n"
        "from app.base.errors import UserError\n"
        "from app.jobs import run_job\n"
        "from app.speech.model import load_model\n"
        "from app.speech.transcribe import TranscribeOptions\n"
        "try:\n"
        "    run_job(sys.argv[1], load_model(), TranscribeOptions(english='none'), 4 * 3600)\n"
        "    message = ''\n"
        "except UserError as exc:\n"
        "    message = str(exc)\n"
        "print(json.dumps({'message': message, 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(flac)], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["message"] == "no speech found in the audio"
    assert result["peak_mb"] < 1200, result
