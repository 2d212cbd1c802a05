"""Fuzzed inputs through both doors — the CLI (`python -m app transcribe`) and the running app's Upload
endpoint (gradio_client): truncated MP3/WAV/MP4, empty files, wrong extensions, seeded random bytes,
odd audio (NaN samples, no samples, video only, 6 channels at 48 kHz), hostile and very long names.

Every input ends as a transcript or as one plain line (a `UserError` message, or Gradio's own
file-type refusal) — never a traceback, a bare "Error", or a message that spans lines — and nothing
is left behind: the CLI runs with TMPDIR and its working directory set to fresh folders that must
stay empty (but for two third-party caches), and a dedicated app server's failed jobs leave no
folder in its results root.

The tests at the end pin bugs this fuzzing found, now fixed (same-stem inputs overwriting each
other's subtitles in the CLI, a newline in a file name splitting the error line, a link's title
rendered as Markdown).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.language.text import has_cjk
from tests.conftest import ROOT, clip_path, free_port, read_split, wait_http

pytestmark = pytest.mark.slow  # real transcriptions, one CLI run and one app server

# What third-party libraries put in TMPDIR on purpose and keep: jieba's dictionary cache and
# onnxruntime's session file (Silero VAD). Anything else left there is a leak.
THIRD_PARTY_TEMP = {"jieba.cache", ".ses"}

# Every message a bad file may get (app/speech/audio.py, app/speech/transcribe.py), with {name} its file name.
USER_ERRORS = (
    "{name} is empty (0 bytes)",
    "could not read {name}: not an audio or video file ffmpeg can decode",
    "could not decode {name}: not an audio or video file ffmpeg can decode",
    "{name} contains no audio",
    "{name}: no such file",
    "no speech found in the audio",  # the UI's wording
    "{name}: no speech found in the audio",  # the CLI names the input in a batch
)
# Gradio's own refusal of an upload whose name does not look like audio or video (gr.File file_types).
GRADIO_FILE_TYPE = "Invalid file type. Please upload a file that is one of these formats: ['audio', 'video']"

HOSTILE_NAME = "we ird 你好 ;rm -rf ~ $(touch pwned) & | 'q' \"d\" `touch pwned2` *?.mp3"


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # "ok" (a transcript), "error" (one message line), "either"
    messages: tuple[str, ...] = USER_ERRORS  # the allowed messages when it fails
    ui_expect: str | None = None  # when the Upload endpoint must answer otherwise
    ui_messages: tuple[str, ...] | None = None
    cli_only: bool = False  # not uploadable (a folder)

    def allowed(self, ui: bool) -> set[str]:
        messages = self.ui_messages if ui and self.ui_messages is not None else self.messages
        return {m.format(name=self.name) for m in messages}

    def expected(self, ui: bool) -> str:
        return self.ui_expect if ui and self.ui_expect else self.expect


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("the ffmpeg binary is needed to build test media: apt-get install ffmpeg")
    return path


def run_ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg(), "-v", "error", "-y", *args], check=True, capture_output=True, timeout=60)


def float_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> None:
    """IEEE-float WAV (format 3), which the wave module cannot write: NaN samples survive into it."""
    data = np.asarray(samples, dtype="<f4").tobytes()
    header = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32) + b"data" + struct.pack("<I", len(data)))
    path.write_bytes(header + data)


def build_inputs(folder: Path) -> list[Case]:
    """The fuzz corpus: files in `folder`, one Case each. File stems are unique (the CLI names its
    output files after them)."""
    row = max(read_split("test"), key=lambda r: len(r["sentence"]))  # the longest sentence: most bytes
    source = clip_path(row)
    f = folder
    shutil.copy(source, f / "speech.mp3")
    run_ffmpeg("-i", str(source), "-ar", "16000", "-ac", "1", str(f / "speech-wav.wav"))
    seconds = 4
    video = ["-f", "lavfi", "-i", f"color=c=black:s=160x120:r=10:d={seconds}", "-i", str(source),
             "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    run_ffmpeg(*video, str(f / "speech-mp4.mp4"))  # index (moov) after the data
    run_ffmpeg(*video, "-movflags", "+faststart", str(f / "speech-faststart.mp4"))  # index first
    cases = [Case("speech.mp3", "ok"), Case("speech-wav.wav", "ok"), Case("speech-mp4.mp4", "ok"),
             Case("speech-faststart.mp4", "ok")]

    for name in ("speech.mp3", "speech-wav.wav", "speech-mp4.mp4", "speech-faststart.mp4"):
        data = (f / name).read_bytes()
        stem, ext = name.rsplit(".", 1)
        for percent in (30, 1):
            cut = f"cut{percent}-{stem}.{ext}"
            (f / cut).write_bytes(data[:max(1, len(data) * percent // 100)])
            cases.append(Case(cut, "either"))

    for ext in ("mp3", "wav", "mp4"):
        (f / f"empty-{ext}.{ext}").write_bytes(b"")
        cases.append(Case(f"empty-{ext}.{ext}", "error", ("{name} is empty (0 bytes)",)))

    # Wrong extensions: the CLI goes by content; the Upload box refuses names that are not audio/video.
    shutil.copy(source, f / "speech-named-text.txt")
    cases.append(Case("speech-named-text.txt", "ok", ui_expect="error", ui_messages=(GRADIO_FILE_TYPE,)))
    (f / "text-named-audio.mp3").write_text("1\n00:00:00,000 --> 00:00:01,000\n你好，这不是音频。\n" * 50,
                                            encoding="utf-8")
    cases.append(Case("text-named-audio.mp3", "error"))
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x64", "-frames:v", "1", "-f", "image2", "-c:v", "png",
               str(f / "png-named-audio.wav"))
    cases.append(Case("png-named-audio.wav", "error"))
    shutil.copy(source, f / "SHOUTING.MP3")
    cases.append(Case("SHOUTING.MP3", "ok"))

    rng = np.random.default_rng(20240611)
    for size, ext in ((1, "mp3"), (100, "wav"), (4096, "ogg"), (65536, "mp4"), (50_000, "m4a"),
                      (200_000, "mp3"), (200_000, "flac"), (100_000, "webm")):
        name = f"random-{size}-{ext}.{ext}"
        (f / name).write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        cases.append(Case(name, "error"))

    # Odd audio: NaN samples, a WAV header with no samples, a video with no audio track, 6 channels.
    float_wav(f / "nan-samples.wav", np.full(16000 * 2, np.nan, dtype=np.float32))
    cases.append(Case("nan-samples.wav", "either"))
    with wave.open(str(f / "no-samples.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    cases.append(Case("no-samples.wav", "error"))
    run_ffmpeg("-f", "lavfi", "-i", "color=c=black:s=160x120:r=10:d=2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
               str(f / "video-only.mp4"))
    cases.append(Case("video-only.mp4", "error"))
    run_ffmpeg("-i", str(source), "-ar", "48000", "-ac", "6", "-c:a", "pcm_s24le", str(f / "six-channels.wav"))
    cases.append(Case("six-channels.wav", "ok"))

    # Names: shell metacharacters and hanzi, the longest names ext4 allows (255 bytes), a leading dash.
    for name in (HOSTILE_NAME, "L" * 250 + ".mp3", "长" * 83 + ".mp3", "-rf.mp3"):
        shutil.copy(source, f / name)
        cases.append(Case(name, "ok"))

    (f / "folder.mp3").mkdir()
    cases.append(Case("folder.mp3", "error", cli_only=True))

    stems = [c.name.rsplit(".", 1)[0].lower() for c in cases]
    assert len(set(stems)) == len(stems), "fuzz file stems must be unique"
    return cases


@pytest.fixture(scope="module")
def fuzz_inputs(tmp_path_factory, zh_synth) -> tuple[Path, list[Case]]:
    folder = tmp_path_factory.mktemp("fuzz-inputs")
    return folder, build_inputs(folder)


@pytest.fixture
def client_temp(tmp_path, monkeypatch):
    """gradio_client 2.7 leaves an empty <tempdir>/<40 hex> folder per downloaded file: keep them in tmp_path."""
    folder = tmp_path / "client-temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def error_lines(stderr: str) -> list[str]:
    """`error: …` lines; tqdm redraws its bar with carriage returns, so those split lines too."""
    return [line[len("error: "):] for line in re.split(r"[\r\n]", stderr) if line.startswith("error: ")]


@pytest.mark.model
def test_cli_answers_every_fuzzed_input_in_one_line_and_leaves_no_temp_files(fuzz_inputs, tmp_path):
    folder, cases = fuzz_inputs
    tmpdir, cwd, out = tmp_path / "tmp", tmp_path / "cwd", tmp_path / "out"
    tmpdir.mkdir()
    cwd.mkdir()
    sources = [str(folder / c.name) for c in cases]
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "app", "transcribe", "--english", "none", "-o", str(out),
                             "--", *sources], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)

    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 1, result.stderr[-3000:]
    stdout = result.stdout.splitlines()
    done = {c.name: next((line for line in stdout if line.startswith(f"{s}: ")), None)
            for c, s in zip(cases, sources)}
    failed = [c for c in cases if done[c.name] is None]
    errors = error_lines(result.stderr)
    # Exactly one error line per failed input, in input order.
    assert len(errors) == len(failed), (errors, [c.name for c in failed])
    for case, message in zip(failed, errors):
        assert case.expected(ui=False) in ("error", "either"), (case.name, message)
        assert message in case.allowed(ui=False), (case.name, message)
    for case in cases:
        line = done[case.name]
        if line is None:
            continue
        assert case.expected(ui=False) in ("ok", "either"), (case.name, line)
        srt = Path(re.search(r"→ (.+?\.srt)(,|$)", line).group(1))
        assert srt.parent == out and srt.is_file(), line
        assert has_cjk(srt.read_text(encoding="utf-8")), line

    # No temp folder or file left behind, nothing written to the working directory (no name ran
    # through a shell: `touch pwned` never happened).
    assert set(os.listdir(tmpdir)) - THIRD_PARTY_TEMP == set()
    assert os.listdir(cwd) == []


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    """A dedicated `python -m app` whose TMPDIR (results root, Gradio's upload cache) and working
    directory are fresh folders, so what it leaves behind can be checked exactly."""
    base = tmp_path_factory.mktemp("fuzz-app")
    tmpdir, cwd = base / "tmp", base / "cwd"
    tmpdir.mkdir()
    cwd.mkdir()
    log = base / "server.log"
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port),
                                 "--allow-local-urls"],  # the link test below serves its page on loopback
                                cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, timeout=180, proc=proc)
        yield {"url": url, "tmp": tmpdir, "cwd": cwd, "log": log}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_upload_answers_every_fuzzed_input_in_one_line_and_failed_jobs_leave_no_folder(fuzz_inputs, fuzz_app,
                                                                                      tmp_path, client_temp):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from tests.load_test import upload_endpoint

    folder, cases = fuzz_inputs
    cases = [c for c in cases if not c.cli_only]
    client = Client(fuzz_app["url"], verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    endpoint = upload_endpoint(client)
    temp_before = set(os.listdir(fuzz_app["tmp"]))

    outcomes: dict[str, str | None] = {}  # name → the error message, None for a transcript
    for case in cases:
        try:
            result = client.predict(handle_file(str(folder / case.name)), "zh", "none", ["hanzi", "pinyin"],
                                    api_name=endpoint)
        except AppError as exc:
            outcomes[case.name] = str(exc)
            continue
        status, table = result[0], result[3]
        assert "subtitles" in status, (case.name, status)
        assert has_cjk("".join(row[2] for row in table["data"])), (case.name, table)
        outcomes[case.name] = None
    client.close()

    for case in cases:
        message = outcomes[case.name]
        if message is None:
            assert case.expected(ui=True) in ("ok", "either"), case.name
        else:
            assert case.expected(ui=True) in ("error", "either"), (case.name, message)
            assert message in case.allowed(ui=True), (case.name, message)

    # One results folder per transcript; failed jobs removed theirs. Nothing else new in TMPDIR
    # but Gradio's upload cache and the results root; nothing in the server's working directory.
    results_root = fuzz_app["tmp"] / "zimu-results"
    jobs = sorted(results_root.iterdir()) if results_root.exists() else []
    assert len(jobs) == sum(m is None for m in outcomes.values()), [j.name for j in jobs]
    assert all(any(j.iterdir()) for j in jobs)
    assert set(os.listdir(fuzz_app["tmp"])) - temp_before - {"gradio", "zimu-results"} - THIRD_PARTY_TEMP == set()
    assert os.listdir(fuzz_app["cwd"]) == []

    # The server logged no traceback at all: not from our code, and not for Gradio's own file-type
    # refusals (app.ui._Blocks keeps those as the client's one-line message).
    log = fuzz_app["log"].read_text(errors="replace")
    assert "Traceback (most recent call last):" not in log, log[-4000:]
    assert any(m == GRADIO_FILE_TYPE for m in outcomes.values())  # the refusals did happen


@pytest.mark.model
def test_cli_inputs_with_the_same_stem_get_separate_subtitle_files(fuzz_inputs, tmp_path):
    folder, _ = fuzz_inputs
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "lesson.mp3", tmp_path / "b" / "lesson.wav"
    shutil.copy(folder / "speech.mp3", first)
    shutil.copy(folder / "speech-wav.wav", second)
    result = subprocess.run([sys.executable, "-m", "app", "transcribe", "--english", "none", "--formats", "srt",
                             "-o", str(tmp_path / "out"), str(first), str(second)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    written = re.findall(r"→ (.+?\.srt)$", result.stdout, re.M)
    assert len(written) == 2
    assert len(set(written)) == 2, written  # both used to be out/lesson.srt: the second replaced the first


@pytest.mark.model
def test_cli_error_for_a_name_with_a_newline_stays_on_one_line(tmp_path):
    bad = tmp_path / "two\nlines.mp3"
    bad.write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "app", "transcribe", "--english", "none",
                             "-o", str(tmp_path / "out"), str(bad)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].endswith("is empty (0 bytes)"), result.stderr


def test_a_link_title_cannot_put_links_or_images_into_the_status(fuzz_app, tmp_path, client_temp, zh_synth):
    from gradio_client import Client
    from markdown_it import MarkdownIt

    from tests.served_media import local_site

    client = Client(fuzz_app["url"], verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl"))
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    endpoint = next(name for name, spec in api.items()
                    if spec["parameters"] and spec["parameters"][0]["component"] == "Textbox"
                    and [p["parameter_name"] for p in spec["parameters"][1:4]] == ["language", "english", "lines"])
    (tmp_path / "site").mkdir()
    with local_site(tmp_path / "site", n_clips=1) as site:
        (site.folder / "title.html").write_text(
            "<!doctype html><html><head><title>[Log in to continue](https://evil.example/login) "
            "![t](https://evil.example/pixel.png)</title></head>"
            '<body><video src="clip.mp4" controls></video></body></html>', encoding="utf-8")
        status = client.predict(site.url("title.html"), "zh", "none", ["hanzi"], api_name=endpoint)[0]
    client.close()
    assert "Log in to continue" in status  # the title is shown…
    rendered = MarkdownIt("commonmark").render(status)
    assert "<a " not in rendered and "<img" not in rendered, rendered  # …as text, not as a link or an image
