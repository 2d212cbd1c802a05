"""Side-by-side speed benchmark: plain faster-whisper vs the Zimu pipeline, same audio, same model.

    python -m app.benchmark [--data ../shared/data/zh-synth] [--minutes 10] [--rounds 1]

Builds a ~10-minute Mandarin MP3 from zh-synth test clips (0.6 s of silence between clips), then
runs each variant in its own child process, alternating the order each round so drift hurts
both equally, and reports medians of wall-clock and CPU time:
  plain: WhisperModel.transcribe(file, language=zh, beam 5, VAD, word timestamps) consumed to the end;
  ours:  decode + VAD + transcribe (same settings) + t2s + jieba/pinyin + cues + SRT written.
Model loading is outside the timed part of both. Prints real-time factor and peak RSS of each.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GAP_SECONDS = 0.6


def build_long_file(data: Path, minutes: float, out: Path) -> tuple[float, str]:
    from app.audio import SAMPLE_RATE, load_audio, write_audio

    with open(data / "test.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    pieces, text, total = [], [], 0.0
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    for row in rows:
        audio = load_audio(data / "clips" / row["path"])
        pieces += [audio, gap]
        text.append(row["sentence"])
        total += audio.size / SAMPLE_RATE + GAP_SECONDS
        if total >= minutes * 60:
            break
    write_audio(np.concatenate(pieces), out, bitrate="48k")
    return total, "".join(text)


def run_variant(variant: str, path: str, srt_out: str) -> dict:
    """Child process body: load the model, then time one variant on the file."""
    from app.model import load_model

    import ctranslate2

    model = load_model()
    # Whisper falls back to sampling (temperature > 0) when a window looks like a loop; the same seed
    # in both children makes both take the same decoding path, so the times compare like for like.
    ctranslate2.set_random_seed(1234)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    extra = {}
    if variant == "plain":
        segments, info = model.transcribe(path, language="zh", beam_size=5, vad_filter=True, word_timestamps=True)
        text = "".join(s.text for s in segments)
        duration = info.duration
    else:
        from app.audio import load_audio
        from app.subtitles import write_subtitles
        from app.transcribe import TranscribeOptions, transcribe

        audio = load_audio(path)
        decoded = time.perf_counter()
        transcript = transcribe(audio, model, TranscribeOptions(language="zh", english="none", beam_size=5))
        write_subtitles(transcript.cues, srt_out, ["hanzi", "pinyin"])
        text, duration = transcript.text, transcript.duration
        # Inside the same run: what our pipeline adds to faster-whisper's own work (t2s, jieba, pinyin,
        # guards, cues, SRT), immune to the machine's speed drifting between runs.
        extra = {"decode_seconds": decoded - started, "model_seconds": transcript.model_seconds,
                 "own_seconds": time.perf_counter() - decoded - transcript.model_seconds}
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "seconds": seconds, "cpu_seconds": cpu, "audio_seconds": duration,
            "peak_rss_mb": peak_mb, "text": text, **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "zh-synth")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "FILE", "SRT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_variant(*args.child), ensure_ascii=False))
        return 0

    from app.text import cer, traditional_only_chars

    with tempfile.TemporaryDirectory(prefix="zimu-bench-") as tmp:
        long_file = Path(tmp) / "long.mp3"
        seconds, reference = build_long_file(args.data, args.minutes, long_file)
        print(f"audio: {long_file.stat().st_size / 1e6:.1f} MB MP3, {seconds / 60:.1f} min "
              f"built from zh-synth test clips", flush=True)
        results: dict[str, list[dict]] = {"plain": [], "ours": []}
        for r in range(args.rounds):
            order = ("plain", "ours") if r % 2 == 0 else ("ours", "plain")
            for variant in order:
                out = subprocess.run([sys.executable, "-m", "app.benchmark", "--child", variant, str(long_file),
                                      str(Path(tmp) / "out.srt")], cwd=ROOT, capture_output=True, text=True,
                                     check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results[variant].append(result)
                print(f"round {r + 1} {variant:5s}: {result['seconds']:.1f} s wall, {result['cpu_seconds']:.1f} s CPU, "
                      f"RTF {result['seconds'] / result['audio_seconds']:.3f}, peak RSS {result['peak_rss_mb']:.0f} MB",
                      flush=True)
    # The median over rounds, wall and CPU: this VM's wall times swing by tens of percent from one
    # minute to the next (other tenants), CPU seconds much less.
    print("\n| variant | RTF (median wall) | wall s (median) | CPU s (median) | peak RSS MB | CER | Traditional-only chars |")
    print("|---|---|---|---|---|---|---|")
    wall, cpu_s = {}, {}
    for variant, runs in results.items():
        wall[variant] = float(np.median([x["seconds"] for x in runs]))
        cpu_s[variant] = float(np.median([x["cpu_seconds"] for x in runs]))
        rtf = wall[variant] / runs[0]["audio_seconds"]
        print(f"| {variant} | {rtf:.3f} | {wall[variant]:.1f} | {cpu_s[variant]:.1f} | "
              f"{max(x['peak_rss_mb'] for x in runs):.0f} | {cer([reference], [runs[0]['text']]):.2%} | "
              f"{len(traditional_only_chars(runs[0]['text']))} |")
    print(f"\nours / plain: wall {wall['ours'] / wall['plain']:.3f}, CPU {cpu_s['ours'] / cpu_s['plain']:.3f}")
    own = [x["own_seconds"] for x in results["ours"]]
    inner = [x["decode_seconds"] + x["model_seconds"] for x in results["ours"]]
    print(f"inside the ours runs: our own work {np.median(own):.2f} s vs decode + faster-whisper "
          f"{np.median(inner):.1f} s = {np.median(own) / np.median(inner):.1%} added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
