"""Accuracy of Practice's tone judges on a Common-Voice-layout split, and on held-out voices.

    python -m app.evaluation.tones ../shared/data/zh-synth --split test [--limit N]
    python -m app.evaluation.tones --corpus ../tone-corpus --split test   # held-out synthesised voices
    python -m app.evaluation.tones --syllables ../tone-syllables --speakers S1 S2   # real isolated syllables

`--corpus` (training.tone_corpus's folder; its test voices are never trained or tuned on): 4-tone accuracy
and confusion of the template classifier on each clip's range (before) and of the trained model on the
speaker's range (after), with the syllables' exact spans; and the synthetic learners: clips with one
syllable said in a wrong tone, flagged at that syllable (recall) against rightly said syllables of the
clips without a wrong tone flagged (false alarms). `--aligned`: the same with each syllable timed as
Practice times it (the clip aligned to the other test voice's reading). `--syllables`: one calibration per speaker, as
`python -m app assess --list` does.

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


def _matrix_lines(matrix: np.ndarray) -> list[str]:
    lines = ["| expected \\ heard | T1 | T2 | T3 | T4 | neutral |", "|---|---|---|---|---|---|"]
    for i, name in enumerate(["T1", "T2", "T3", "T4", "neutral"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in matrix[i]) + " |")
    return lines


def corpus_report(folder: Path, split: str, aligned: bool = False) -> dict:
    """Before (templates, clip range) and after (model, speaker range) on a tone-corpus split.
    `aligned`: each syllable's span found as Practice finds it, by aligning the clip to the native
    reading (the other test voice's, speed 1.0), instead of the exact span the corpus records."""
    import json

    from app.practice.tone_model import default_model, heard_tones, speaker_calibrations

    def timing(r: dict, audio) -> list:
        if not aligned:
            return [tuple(x) if x else None for x in r["spans"]]
        from app.practice.align import align_to_reference
        from app.practice.assess import reference_reading

        others = [v for v in voices if v != r["voice"]]
        reference = reference_reading(r["sentence"], others[0] if others else None)
        return align_to_reference(audio, reference.audio, reference.spans) if reference else [None] * len(r["spans"])

    rows = [json.loads(line) for line in (folder / f"{split}.jsonl").read_text("utf-8").splitlines() if line.strip()]
    voices = sorted({r["voice"] for r in rows})
    audios = {r["path"]: load_audio(folder / "clips" / r["path"]) for r in rows}
    tracks = {p: pitch_track(a) for p, a in audios.items()}
    speaker = speaker_calibrations((r["voice"], tracks[r["path"]]) for r in rows)
    model = default_model()
    by_path = {r["path"]: r for r in rows}
    before, after = ([], []), ([], [])
    flags = {"hit": 0, "wrong": 0, "alarm": 0, "right": 0, "audible_hit": 0, "audible": 0}
    for r in progress(rows, unit="clip"):
        track, spans = tracks[r["path"]], timing(r, audios[r["path"]])
        heard = heard_tones(track, spans, speaker[r["voice"]], audios[r["path"]], model)
        for k, (span, h) in enumerate(zip(spans, heard)):
            if span is None or h is None:
                continue
            said, expected = r["said"][k], r["expected"][k]
            if r["wrong"] is None:
                before[0].append(said), before[1].append(classify(track, *span)[0])
                after[0].append(said), after[1].append(h.tone)
                if expected != 5:
                    flags["right"] += 1
                    flags["alarm"] += h.chance_of(expected) < model.flag_below
            elif k == r["wrong"]:
                hit = h.chance_of(expected) < model.flag_below
                flags["wrong"] += 1
                flags["hit"] += hit
                right = by_path.get(r["path"].replace("-wrong", ""))
                if right and audible_change(track, r["spans"][k], tracks[right["path"]], right["spans"][k]):
                    flags["audible"] += 1
                    flags["audible_hit"] += hit
    return {"clips": len(rows), "before": report(*before), "after": report(*after), "flags": flags}


AUDIBLE = 1.0  # semitones: about the smallest pitch change in speech a listener hears


def audible_change(track, span, right_track, right_span) -> bool:
    """Whether a synthetic learner's wrong tone was spoken at all: the syllable's pitch differs from the
    same voice's right reading of the sentence by AUDIBLE semitones or more, in shape (RMS after the means
    are removed) or in level. Told another tone, the voice sometimes says the syllable as before."""
    from app.practice.tone_model import voiced_contour

    said = voiced_contour(track, *span) if span else None
    right = voiced_contour(right_track, *right_span) if right_span else None
    if said is None or right is None:
        return False
    difference = said[0] - right[0]
    shape = float(np.sqrt(np.mean((difference - difference.mean()) ** 2)))
    return max(shape, abs(float(difference.mean()))) >= AUDIBLE


def syllables_report(folder: Path, speakers: list[str]) -> dict:
    """The trained model on real isolated syllables, each speaker calibrated on all their clips."""
    import csv

    from app.practice.tone_model import default_model, heard_tones, speaker_calibrations
    from app.practice.tones import voiced_span

    with open(folder / "syllables.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["speaker"] in speakers]
    audios = {r["path"]: load_audio(folder / r["path"]) for r in progress(rows, unit="syllable")}
    tracks = {path: pitch_track(audio) for path, audio in audios.items()}
    calibrations = speaker_calibrations((r["speaker"], tracks[r["path"]]) for r in rows)
    out = {}
    for s in speakers:
        mine = [r for r in rows if r["speaker"] == s]
        expected, heard, template = [], [], []
        for r in mine:
            track = tracks[r["path"]]
            span = voiced_span(track)
            if span is None:
                continue
            h = heard_tones(track, [span], calibrations[s], audios[r["path"]], default_model())[0]
            expected.append(int(r["tone"]))
            heard.append(h.tone if h else None)
            template.append(classify(track, *span)[0])
        out[s] = {"after": report(expected, heard), "before": report(expected, template), "rows": len(mine)}
    return out


def _print_report(title: str, r: dict) -> None:
    print(f"{title}: syllables {r['syllables']}, voiced {r['voiced']}, 4-tone accuracy {r['accuracy_4']:.1%}, "
          f"5-class {r['accuracy_5']:.1%}")
    print("\n".join(_matrix_lines(r["matrix"])) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluation.tones", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, nargs="?")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--corpus", type=Path, help="training.tone_corpus's folder")
    parser.add_argument("--syllables", type=Path, help="training.tone_syllables's folder")
    parser.add_argument("--speakers", nargs="*", default=[], help="the held-out real speakers (with --syllables)")
    parser.add_argument("--aligned", action="store_true",
                        help="with --corpus: syllables timed by alignment to the native reading, as Practice times them")
    args = parser.parse_args(argv)
    if args.corpus:
        r = corpus_report(args.corpus, args.split, args.aligned)
        print(f"{args.corpus} {args.split}: {r['clips']} clips, "
              + ("spans aligned to the native reading" if args.aligned else "exact spans"))
        _print_report("before (templates, each clip's range)", r["before"])
        _print_report("after (trained model, the speaker's range)", r["after"])
        f = r["flags"]
        print(f"one wrong tone flagged at its syllable: {f['hit']}/{f['wrong']} = {f['hit'] / max(f['wrong'], 1):.1%}; "
              f"rightly said syllables flagged: {f['alarm']}/{f['right']} = {f['alarm'] / max(f['right'], 1):.1%}")
        print(f"  of the wrong tones the voice spoke audibly (pitch {AUDIBLE:g} st or more from its right reading): "
              f"{f['audible_hit']}/{f['audible']} = {f['audible_hit'] / max(f['audible'], 1):.1%}")
        return 0
    if args.syllables:
        for speaker, r in syllables_report(args.syllables, args.speakers).items():
            _print_report(f"{speaker} before (templates)", r["before"])
            _print_report(f"{speaker} after (trained model, --list calibration)", r["after"])
        return 0
    if args.data is None:
        parser.error("give DATA, --corpus or --syllables")
    rows = read_split(args.data, args.split)
    rows = rows[: args.limit] if args.limit else rows
    expected, heard, used = collect(args.data, rows, load_model())
    r = report(expected, heard)
    print(f"clips used: {used}/{len(rows)}  syllables: {r['syllables']}  voiced: {r['voiced']}")
    print(f"4-tone accuracy (neutral excluded): {r['accuracy_4']:.1%}   5-class accuracy: {r['accuracy_5']:.1%}")
    print("\n" + "\n".join(_matrix_lines(r["matrix"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
