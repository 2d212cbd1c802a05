"""Side-by-side benchmark: plain faster-whisper (sequential and batched) vs the Zimu pipeline,
same audio, same model, same threads.

    python -m app.evaluation.benchmark [--data ../shared/data/zh-synth] [--minutes 10] [--rounds 2]
                            [--variants plain-sequential,plain-batched,ours,ours-english,cold-start]

Builds a long Mandarin MP3 from zh-synth clips (test split first, then dev and train for longer
files; 0.6 s of silence between clips), then runs each variant in its own child process, the
order reversed every other round so drift hurts all equally, and reports medians:
  plain-sequential: WhisperModel.transcribe(file, language=zh, beam 5, VAD, word timestamps);
  plain-batched:    BatchedInferencePipeline(model).transcribe(file, language=zh, beam 5, batch 8);
  ours:             `python -m app transcribe`'s work: decode + transcribe (English none) + SRT written;
  ours-english:     the same with Whisper's English;
  cold-start:       a new process: imports, model load, decode, until the first cue of a 10-s clip;
  ours-1worker:     ours on one CTranslate2 worker using every core (not run unless named).
`VARIANT@N` runs a variant with batch size N (e.g. ours@4,ours@16 to choose the batch size).
The plain variants load the model with faster-whisper's defaults (one worker on every core); ours
with app.speech.model's (two single-threaded workers on 2 cores): the same threads in total. Model loading
is outside the timed part except for cold-start. Wall, CPU, RTF, peak RSS, CER.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GAP_SECONDS = 0.6
VARIANTS = ("plain-sequential", "plain-batched", "ours", "ours-english", "cold-start")
EXTRA_VARIANTS = ("ours-1worker",)  # ours with one CTranslate2 worker on every core (faster-whisper's layout)
SEED = 1234


def build_long_file(data: Path, minutes: float, out: Path) -> tuple[float, str]:
    """Clips joined with short gaps until `minutes` is reached; returns seconds and the reference text.
    The audio is written in pieces (int16 through PyAV's encoder), never held whole as float32."""
    from app.speech.audio import SAMPLE_RATE, load_audio, write_audio
    from app.base.corpus import clip_path, read_split

    rows = [row for split in ("test", "dev", "train") for row in read_split(data, split)]
    pieces, text, total = [], [], 0.0
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.int16)
    for row in rows:
        audio = load_audio(clip_path(data, row), dtype=np.int16)
        pieces += [audio, gap]
        text.append(row["sentence"])
        total += audio.size / SAMPLE_RATE + GAP_SECONDS
        if total >= minutes * 60:
            break
    write_audio(np.concatenate(pieces), out, bitrate="48k")
    return total, "".join(text)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_variant(variant: str, path: str, srt_out: str, started: float) -> dict:
    """Child process body: load the model, then time one variant on the file (cold-start: on the
    10-s clip beside it, from `started`, the parent's clock when it launched this process)."""
    name, _, batch = variant.partition("@")
    batch_size = int(batch) if batch else None
    if name == "cold-start":
        return _cold_start(str(Path(path).with_name("clip10.mp3")), started)
    import ctranslate2

    from app.speech.model import load_model, resolve_model

    if name.startswith("plain"):
        # The library as its users run it: one worker using every core (faster-whisper's defaults).
        from faster_whisper import WhisperModel

        model = WhisperModel(resolve_model(None), device="cpu", compute_type="int8")
    else:
        if name == "ours-1worker":
            os.environ["ZIMU_WORKERS"] = "1"
        model = load_model()  # ours: app.speech.model's layout (two single-threaded workers on 2 cores)
    ctranslate2.set_random_seed(SEED)  # the sequential path's temperature fallback samples
    cpu_before, started = _cpu_seconds(), time.perf_counter()
    extra = {}
    if name == "plain-sequential":
        segments, info = model.transcribe(path, language="zh", beam_size=5, vad_filter=True, word_timestamps=True)
        text, duration = "".join(s.text for s in segments), info.duration
    elif name == "plain-batched":
        from faster_whisper import BatchedInferencePipeline

        segments, info = BatchedInferencePipeline(model).transcribe(path, language="zh", beam_size=5,
                                                                     batch_size=batch_size or 8)
        text, duration = "".join(s.text for s in segments), info.duration
    elif name in ("ours", "ours-english", "ours-1worker"):
        from app.speech.audio import load_audio
        from app.language.subtitles import write_subtitles
        from app.language.text import has_cjk
        from app.speech.transcribe import TranscribeOptions, transcribe

        audio = load_audio(path)
        decoded = time.perf_counter()
        options = TranscribeOptions(language="zh", english="whisper" if name == "ours-english" else "none",
                                    beam_size=5)
        if batch_size:
            options.batch_size = batch_size
        transcript = transcribe(audio, model, options)
        write_subtitles(transcript.cues, srt_out, ["hanzi", "pinyin", "english"])
        text, duration = transcript.text, transcript.duration
        # Inside the same run: what our pipeline adds to faster-whisper's own work (t2s, jieba, pinyin,
        # guards, cues, SRT, English placement), immune to the machine's speed drifting between runs.
        extra = {"decode_seconds": decoded - started, "model_seconds": transcript.model_seconds,
                 "own_seconds": time.perf_counter() - decoded - transcript.model_seconds,
                 "cues": len(transcript.cues),
                 "english_empty": sum(not c.english for c in transcript.cues) if name == "ours-english" else 0,
                 "english_chinese": sum(has_cjk(c.english) for c in transcript.cues),
                 "warnings": transcript.warnings}
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "seconds": seconds, "cpu_seconds": _cpu_seconds() - cpu_before,
            "audio_seconds": duration, "peak_rss_mb": peak_mb, "text": text, **extra}


def _cold_start(path: str, started: float) -> dict:
    """In a fresh process: imports, model load, decoding, until the first cue of a 10-s clip."""
    from app.speech.audio import load_audio
    from app.speech.model import load_model
    from app.speech.transcribe import TranscribeOptions, iter_transcribe

    first = next(iter_transcribe(load_audio(path), load_model(), TranscribeOptions(language="zh", english="none")))
    since_start = time.time() - started
    return {"variant": "cold-start", "seconds": since_start, "cpu_seconds": _cpu_seconds(), "audio_seconds": 10.0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "text": first.text}


def _child(variant: str, long_file: Path, srt: Path) -> dict:
    command = [sys.executable, "-m", "app.evaluation.benchmark", "--child", variant, str(long_file), str(srt),
               "--started", repr(time.time())]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluation.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "zh-synth")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {', '.join(VARIANTS + EXTRA_VARIANTS)}; "
                             "VARIANT@N sets the batch size")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "FILE", "SRT"), help=argparse.SUPPRESS)
    parser.add_argument("--started", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_variant(*args.child, started=float(args.started)), ensure_ascii=False))
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v.partition("@")[0] not in VARIANTS + EXTRA_VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS + EXTRA_VARIANTS)}")

    from app.language.text import cer, traditional_only_chars

    with tempfile.TemporaryDirectory(prefix="zimu-bench-") as tmp:
        long_file = Path(tmp) / "long.mp3"
        seconds, reference = build_long_file(args.data, args.minutes, long_file)
        if any(v.startswith("cold-start") for v in variants):
            from app.speech.audio import SAMPLE_RATE, load_audio, write_audio

            write_audio(load_audio(long_file)[:10 * SAMPLE_RATE], Path(tmp) / "clip10.mp3", bitrate="48k")
        print(f"audio: {long_file.stat().st_size / 1e6:.1f} MB MP3, {seconds / 60:.1f} min built from zh-synth "
              f"clips; {len(variants)} variants x {args.rounds} rounds, alternating order", flush=True)
        results: dict[str, list[dict]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for variant in variants if r % 2 == 0 else variants[::-1]:
                result = _child(variant, long_file, Path(tmp) / "out.srt")
                results[variant].append(result)
                print(f"round {r + 1} {variant:18s}: {result['seconds']:6.1f} s wall, {result['cpu_seconds']:6.1f} s CPU, "
                      f"RTF {result['seconds'] / result['audio_seconds']:.3f}, peak RSS {result['peak_rss_mb']:.0f} MB"
                      + "".join(f", {w}" for w in result.get("warnings", [])), flush=True)
    # Medians over rounds, wall and CPU: this VM's wall times swing by tens of percent from one
    # minute to the next (other tenants), CPU seconds much less.
    print("\n| variant | wall s (median) | RTF | CPU s (median) | peak RSS MB | CER | Traditional-only chars |")
    print("|---|---|---|---|---|---|---|")
    wall = {}
    for variant, runs in results.items():
        wall[variant] = float(np.median([x["seconds"] for x in runs]))
        cpu = float(np.median([x["cpu_seconds"] for x in runs]))
        texts = {x["text"] for x in runs}
        quality = ("—", "—") if variant.startswith("cold-start") else (
            f"{cer([reference], [runs[0]['text']]):.2%}" + ("" if len(texts) == 1 else " (runs differ)"),
            str(len(traditional_only_chars(runs[0]["text"]))))
        print(f"| {variant} | {wall[variant]:.1f} | {wall[variant] / runs[0]['audio_seconds']:.3f} | {cpu:.1f} | "
              f"{max(x['peak_rss_mb'] for x in runs):.0f} | {quality[0]} | {quality[1]} |")
    print()
    base = next((v for v in variants if v.startswith("plain-batched")), None)
    for variant in variants:
        if base and variant != base and not variant.startswith("cold-start"):
            print(f"{variant} / {base}: wall {wall[variant] / wall[base]:.3f}")
    if "ours" in wall and "ours-english" in wall:
        runs = results["ours-english"]
        print(f"ours-english / ours: wall {wall['ours-english'] / wall['ours']:.3f}; English lines empty: "
              f"{max(x['english_empty'] for x in runs)}, with Chinese: {max(x['english_chinese'] for x in runs)} "
              f"of {runs[0]['cues']} cues")
    for variant in variants:
        if variant.startswith("ours"):
            own = np.median([x["own_seconds"] for x in results[variant]])
            inner = np.median([x["decode_seconds"] + x["model_seconds"] for x in results[variant]])
            print(f"inside the {variant} runs: our own work {own:.2f} s vs decode + faster-whisper {inner:.1f} s "
                  f"= {own / inner:.1%} added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
