"""Many-voice connected speech with every syllable's time span and tone known exactly: the tone model's
training data and its held-out check, and synthetic learners who say one tone wrong.

    python -m training.tone_corpus ../tone-corpus --zh-synth ../shared/data/zh-synth [--per-voice 300]

Each HSK sentence of zh-synth's splits (never one that is in none of them) is spoken by
`app.speech.synthesis.speak_timed`, whose spans come from the model's own durations, at a speed drawn
from 0.85-1.15. Voices are kept apart (VOICE_SPLITS): the tone model trains on four voices, is tuned
on a fifth and reported on two it never heard. Train voices read zh-synth's train sentences, the others
its dev and test sentences.

`--wrong N`: N sentences per dev/test voice are spoken a second time with one syllable's tone changed
(a toned syllable, drawn with the seed; the new tone drawn among the other three), the way a learner
gets one tone wrong: `wrong` in the record names the syllable.

`--zh-synth-clips N`: N clips of zh-synth's own voice (a FastSpeech2 voice, not Kokoro's) from its train
split join the train split as a fifth voice, `zh-synth`: their spans are found by aligning each clip to
a train voice's reading of the sentence (`app.practice.align`, median boundary error 10 ms between
voices), their tones are the pinyin line's (the voice is taken to say what it was given).

Writes DIR/clips/*.wav (16 kHz mono) and DIR/{train,dev,test}.jsonl, one record per clip:
path, voice, sentence, speed, pinyin (marked), expected (the tones the pinyin line speaks), said (the
tones spoken), spans ([start, end] seconds or null), wrong (a syllable index or null). Resumable: a clip
already written is kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

from app.base.errors import UserError
from app.base.progress import progress
from app.evaluation.spoken_corpus import sentences_by_split
from app.speech import synthesis
from app.speech.audio import SAMPLE_RATE, resample
from app.speech.synthesis import write_wav

# Voices apart: none is in two splits. The test pair is one female, one male voice among those offered.
VOICE_SPLITS = {"train": ("zf_xiaobei", "zf_xiaoyi", "zm_yunxia", "zm_yunyang"),
                "dev": ("zm_yunjian",),
                "test": ("zf_xiaoxiao", "zm_yunxi")}
SPEEDS = (0.85, 1.15)
SEED = 2026


def wrong_tones(expected: list[int], rng: random.Random) -> tuple[int, list[int]] | None:
    """(index, tones) with one toned syllable's tone replaced by another of the four; None if none is toned."""
    toned = [k for k, t in enumerate(expected) if t != 5]
    if not toned:
        return None
    k = rng.choice(toned)
    said = list(expected)
    said[k] = rng.choice([t for t in (1, 2, 3, 4) if t != expected[k]])
    return k, said


def _row(path: str, voice: str, sentence: str, speed: float, syllables, said, spans, wrong) -> dict:
    """One clip's record (the layout the module docstring gives)."""
    return {"path": path, "voice": voice, "sentence": sentence, "speed": round(speed, 3),
            "pinyin": [s.marked for s in syllables], "expected": [s.spoken_tone for s in syllables],
            "said": list(said), "spans": [[round(s[0], 4), round(s[1], 4)] if s else None for s in spans],
            "wrong": wrong}


def record(out: Path, name: str, sentence: str, voice: str, speed: float, tones=None, wrong=None) -> dict | None:
    path = out / "clips" / f"{name}.wav"
    spoken = synthesis.speak_timed(sentence, voice, speed, tones)
    row = _row(path.name, voice, sentence, speed, spoken.syllables, spoken.tones, spoken.spans, wrong)
    if not path.is_file():
        write_wav(resample(spoken.audio, synthesis.SAMPLE_RATE), path, rate=SAMPLE_RATE)
    return row


def write(out: Path, zh_synth: Path, per_voice: int, wrong: int, seed: int = SEED,
          splits: tuple[str, ...] = tuple(VOICE_SPLITS)) -> dict[str, int]:
    sentences = sentences_by_split(zh_synth, None)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, voices in VOICE_SPLITS.items():
        if split not in splits:
            continue
        listed = out / f"{split}.jsonl"
        done = [json.loads(line) for line in listed.read_text("utf-8").splitlines()] if listed.is_file() else []
        done = {(r["voice"], r["sentence"], r["wrong"] is not None) for r in done}
        pool = sentences["train"] if split == "train" else sentences["dev"] + sentences["test"]
        jobs = []
        for voice in voices:
            if sum(1 for v, _, w in done if v == voice and not w) >= per_voice:
                continue  # spoken enough already (an earlier, larger run)
            rng = random.Random(f"{seed}-{voice}")
            for n, sentence in enumerate(rng.sample(pool, min(per_voice, len(pool)))):
                # Named by the sentence, so a rerun with another --per-voice resumes without a clash.
                name = f"{voice}-{hashlib.sha1(sentence.encode()).hexdigest()[:10]}"
                jobs.append((name, sentence, voice, rng.uniform(*SPEEDS), None, None))
                if split != "train" and n < wrong:
                    from app.language.pinyin import syllables

                    change = wrong_tones([s.spoken_tone for s in syllables(sentence)], rng)
                    if change:
                        jobs.append((f"{name}-wrong", sentence, voice, jobs[-1][3], change[1], change[0]))
        with open(listed, "a", encoding="utf-8") as f:
            for name, sentence, voice, speed, tones, k in progress(jobs, unit="clip", desc=split):
                if (voice, sentence, k is not None) in done:
                    continue
                try:
                    row = record(out, name, sentence, voice, speed, tones, k)
                except UserError:
                    continue
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
        counts[split] = len(listed.read_text("utf-8").splitlines())
    return counts


def write_zh_synth(out: Path, zh_synth: Path, count: int, seed: int = SEED) -> int:
    """zh-synth's own clips (train split) as training rows, timed by alignment to a train voice."""
    from app.base.corpus import read_split
    from app.practice.align import align_to_reference
    from app.speech.audio import load_audio

    listed = out / "train.jsonl"
    done = {json.loads(line)["path"] for line in listed.read_text("utf-8").splitlines()} if listed.is_file() else set()
    rows = read_split(zh_synth, "train")
    random.Random(f"{seed}-zh-synth").shuffle(rows)
    references = VOICE_SPLITS["train"]
    with open(listed, "a", encoding="utf-8") as f:
        for n, clip in enumerate(progress(rows[:count], unit="clip", desc="zh-synth")):
            name = f"zh-synth-{Path(clip['path']).stem}.wav"
            if name in done:
                continue
            try:
                spoken = synthesis.speak_timed(clip["sentence"], references[n % len(references)])
            except UserError:
                continue
            audio = load_audio(zh_synth / "clips" / clip["path"])
            spans = align_to_reference(audio, resample(spoken.audio, synthesis.SAMPLE_RATE), spoken.spans)
            write_wav(audio, out / "clips" / name, rate=SAMPLE_RATE)
            # The voice is taken to say what it was given: the tones said are the pinyin line's.
            said = [s.spoken_tone for s in spoken.syllables]
            row = _row(name, "zh-synth", clip["sentence"], 1.0, spoken.syllables, said, spans, None)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
    return len(listed.read_text("utf-8").splitlines())


def read(folder: Path, split: str) -> list[dict]:
    with open(folder / f"{split}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def cannot_speak_from(zh_synth: Path) -> str | None:
    """Why speech cannot be made from zh-synth's sentences here (no synthesis, not zh-synth's folder), or None."""
    reason = synthesis.unavailable_reason()
    if reason:
        return reason
    if not (zh_synth / "train.tsv").is_file():
        return f"{zh_synth} is not zh-synth's folder (no train.tsv)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.tone_corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--zh-synth", type=Path, required=True, help="zh-synth's folder: which sentence is in which split")
    parser.add_argument("--per-voice", type=int, default=300)
    parser.add_argument("--wrong", type=int, default=100, help="sentences per dev/test voice also spoken with one tone wrong")
    parser.add_argument("--zh-synth-clips", type=int, default=0,
                        help="zh-synth's own train clips added to the train split as a fifth voice")
    parser.add_argument("--splits", nargs="+", choices=list(VOICE_SPLITS), default=list(VOICE_SPLITS),
                        help="which splits to write or extend (e.g. more training speech only)")
    args = parser.parse_args(argv)
    problem = cannot_speak_from(args.zh_synth)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    counts = write(args.out, args.zh_synth, args.per_voice, args.wrong, splits=tuple(args.splits))
    if args.zh_synth_clips:
        counts["train"] = write_zh_synth(args.out, args.zh_synth, args.zh_synth_clips)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
