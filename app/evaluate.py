"""Normalised CER of a model on a Common-Voice-layout split (clips/ + <split>.tsv), through the
app's own pipeline, beside plain faster-whisper on the same clips.

    python -m app.evaluate ../shared/data/zh-synth --split test [--limit N] [--model DIR] [--csv out.csv]

Prints CER for both and the count of Traditional-only characters each produced; the per-utterance
CSV shows what goes wrong (reference, hypothesis, character errors).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from tqdm import tqdm

from app.audio import load_audio
from app.errors import UserError
from app.model import load_model
from app.text import cer, char_errors, normalize_for_cer, traditional_only_chars
from app.transcribe import TranscribeOptions, transcribe


def read_split(folder: Path, split: str) -> list[dict]:
    path = folder / f"{split}.tsv"
    if not path.is_file():
        raise UserError(f"{path} not found: expected a Common Voice layout (clips/ and {split}.tsv)")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if rows and not {"path", "sentence"} <= rows[0].keys():
        raise UserError(f"{path} lacks the 'path' and 'sentence' columns")
    return rows


def plain_faster_whisper(model, audio, language: str, beam_size: int) -> str:
    segments, _ = model.transcribe(audio, language=language, beam_size=beam_size, vad_filter=True)
    return "".join(s.text for s in segments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="Common Voice layout folder, e.g. ../shared/data/zh-synth")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=0, help="first N clips only (0 = all)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--compute-type", default=None)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--no-plain", action="store_true", help="skip the plain faster-whisper baseline")
    parser.add_argument("--csv", type=Path, default=None, help="per-utterance results")
    args = parser.parse_args(argv)
    try:
        rows = read_split(args.data, args.split)
        rows = rows[: args.limit] if args.limit else rows
        model = load_model(args.model, None, args.compute_type)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    options = TranscribeOptions(language="zh", english="none", beam_size=args.beam_size)
    refs, ours, plain, results = [], [], [], []
    audio_seconds = ours_seconds = plain_seconds = 0.0
    for row in tqdm(rows, desc=f"{args.split}", unit="clip"):
        audio = load_audio(args.data / "clips" / row["path"])
        audio_seconds += audio.size / 16000
        t = time.perf_counter()
        try:
            hyp = transcribe(audio, model, options).text
        except UserError:  # no speech found
            hyp = ""
        ours_seconds += time.perf_counter() - t
        raw = ""
        if not args.no_plain:
            t = time.perf_counter()
            raw = plain_faster_whisper(model, audio, "zh", args.beam_size)
            plain_seconds += time.perf_counter() - t
        refs.append(row["sentence"])
        ours.append(hyp)
        plain.append(raw)
        results.append({"path": row["path"], "reference": row["sentence"], "hypothesis": hyp,
                        "char_errors": char_errors(row["sentence"], hyp),
                        "ref_chars": len(normalize_for_cer(row["sentence"])), "plain_hypothesis": raw})
    print(f"clips: {len(rows)}  audio: {audio_seconds / 60:.1f} min")
    print(f"ours:  CER {cer(refs, ours):.2%}  Traditional-only chars {sum(len(traditional_only_chars(h)) for h in ours)}"
          f"  RTF {ours_seconds / audio_seconds:.3f}")
    if not args.no_plain:
        print(f"plain: CER {cer(refs, plain):.2%}  Traditional-only chars "
              f"{sum(len(traditional_only_chars(h)) for h in plain)}  RTF {plain_seconds / audio_seconds:.3f}")
    if args.csv:
        write_rows(args.csv, results)
    return 0


def write_rows(path, rows: list[dict]) -> None:
    """One CSV row per clip, the columns of the first row (the per-clip file every evaluator writes)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())
