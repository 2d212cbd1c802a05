"""Accuracy of the pitch tone classifier (app.practice.tones) on a Common-Voice-layout split.

    python -m app.evaluation.tones ../shared/data/zh-synth --split test [--limit N]

For each clip the recogniser gives every hanzi a time span; only clips whose recognised text equals
the reference (after normalisation) are used, so each span belongs to the right syllable. The
reference tone is the sentence's dictionary reading after sandhi (app.language.pinyin.syllables). Prints
4-tone accuracy (neutral-tone syllables excluded), 5-class accuracy and the confusion matrix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from app.speech.audio import load_audio
from app.base.errors import UserError
from app.base.corpus import read_split
from app.speech.model import load_model
from app.language.pinyin import syllables
from app.base.progress import progress
from app.practice.assess import hanzi_times
from app.language.text import normalize_for_cer
from app.practice.tones import classify, pitch_track, refine_spans
from app.speech.transcribe import TranscribeOptions, transcribe


def collect(folder: Path, rows: list[dict], model) -> tuple[list[int], list[int | None], int]:
    expected, heard, used = [], [], 0
    for row in progress(rows, unit="clip"):
        audio = load_audio(folder / "clips" / row["path"])
        try:
            transcript = transcribe(audio, model, TranscribeOptions(english="none"))
        except UserError:
            continue
        if normalize_for_cer(transcript.text) != normalize_for_cer(row["sentence"]):
            continue
        sylls, spans = syllables(row["sentence"]), hanzi_times(transcript)
        if len(sylls) != len(spans):
            continue
        used += 1
        track = pitch_track(audio)
        for syl, (start, end) in zip(sylls, refine_spans(track, spans)):
            expected.append(syl.spoken_tone)
            heard.append(classify(track, start, end)[0])
    return expected, heard, used


def report(expected: list[int], heard: list[int | None]) -> dict:
    pairs = [(e, h) for e, h in zip(expected, heard) if h is not None]
    four = [(e, h) for e, h in pairs if e != 5]
    matrix = np.zeros((5, 5), dtype=int)
    for e, h in pairs:
        matrix[e - 1, h - 1] += 1
    return {
        "syllables": len(expected), "voiced": len(pairs),
        "accuracy_4": sum(e == h for e, h in four) / max(1, len(four)),
        "accuracy_5": sum(e == h for e, h in pairs) / max(1, len(pairs)),
        "matrix": matrix,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluation.tones", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args(argv)
    rows = read_split(args.data, args.split)
    rows = rows[: args.limit] if args.limit else rows
    expected, heard, used = collect(args.data, rows, load_model())
    r = report(expected, heard)
    print(f"clips used: {used}/{len(rows)}  syllables: {r['syllables']}  voiced: {r['voiced']}")
    print(f"4-tone accuracy (neutral excluded): {r['accuracy_4']:.1%}   5-class accuracy: {r['accuracy_5']:.1%}")
    print("\n| expected \\ heard | T1 | T2 | T3 | T4 | neutral |\n|---|---|---|---|---|---|")
    for i, name in enumerate(["T1", "T2", "T3", "T4", "neutral"]):
        print(f"| {name} | " + " | ".join(str(v) for v in r["matrix"][i]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
