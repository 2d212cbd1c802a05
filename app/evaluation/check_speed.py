"""How long Practice's Check takes: the whole `assess` of a ~5-s attempt, on this machine.

    python -m app.evaluation.check_speed --attempts 12

Two HSK sentences of zh-synth's dev and test splits at a time, whose reading by the held-out voice
zm_yunxi (the "learner", speed 1.0, a quarter second of silence either side, as a recording has) lasts
4.5-5.5 s; the
reference is the female default voice, as Practice reads it. Two timings per attempt, in alternating
order, wall clock:

* **warm**: the native reading was made beforehand (Practice starts it when the sentence is chosen,
  `app.practice.assess.prepare_reference`), so Check is the recogniser, the pitch track, the alignment
  and the tone model;
* **cold**: the reading is synthesised inside the check (what a check cost before it was prepared).

Printed: medians and 90th percentiles, in seconds per check and scaled to a 5-s attempt, and the
recogniser alone. The issue's bar is ≤ 2 s for a 5-s recording on 2 cores.

Measured (`--attempts 10`, seed 26: 10 attempts of 4.7-5.3 s, 2 cores shared with one tone-corpus
synthesis job, load average 3.7), seconds:

    variant     median per check  p90   median per 5 s  p90
    warm        1.38              1.48  1.39            1.54
    cold        3.37              3.75  3.39            3.68
    recogniser  1.37              1.43  1.41            1.51

The recogniser is the check's cost (the pitch track, the alignment and the tone model add ~0.05 s here,
within the noise); the reading made at Check time would double it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

LEARNER = "zm_yunxi"
SEED = 26
DEFAULT_CORPUS = Path("../shared/data/zh-synth")


def attempts(corpus: Path, count: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """(sentence, 16-kHz attempt) pairs of 4.5-5.5 s, drawn with `seed`."""
    from app.evaluation.spoken_corpus import sentences_by_split
    from app.speech import synthesis
    from app.speech.audio import SAMPLE_RATE, resample

    splits = sentences_by_split(corpus, None)
    pool = [s for s in splits["dev"] + splits["test"] if 8 <= len(s) <= 14]
    random.Random(seed).shuffle(pool)
    pad = np.zeros(SAMPLE_RATE // 4, np.float32)
    chosen = []
    for first, second in zip(pool[::2], pool[1::2]):
        sentence = first + second  # HSK sentences are short: two of them make a 5-s attempt
        audio = np.concatenate([pad, resample(synthesis.speak(sentence, LEARNER), synthesis.SAMPLE_RATE), pad])
        if 4.5 <= audio.size / SAMPLE_RATE <= 5.5:
            chosen.append((sentence, audio))
            if len(chosen) == count:
                break
    return chosen


def main(argv: list[str] | None = None) -> int:
    from app.practice import assess as practice
    from app.speech import synthesis
    from app.speech.audio import SAMPLE_RATE
    from app.speech.model import load_model
    from app.speech.transcribe import TranscribeOptions, transcribe

    parser = argparse.ArgumentParser(prog="python -m app.evaluation.check_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=12)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="zh-synth: which HSK sentences are dev/test")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    reason = synthesis.unavailable_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    model = load_model()
    voice = synthesis.default_voice("female")
    pairs = attempts(args.corpus, args.attempts, args.seed)
    # One check first, outside the figures: the first call of a process loads the aligner's and the
    # tone model's parts (README: about 0.3 s once per process).
    practice.assess(pairs[0][1], pairs[0][0], model, practice._make_reference(pairs[0][0], voice))
    seconds: dict[str, list[float]] = {"warm": [], "cold": [], "recogniser": []}
    audio_seconds = []
    for n, (sentence, audio) in enumerate(pairs):
        audio_seconds.append(audio.size / SAMPLE_RATE)
        ready = practice._make_reference(sentence, voice)
        for variant in (("warm", "cold") if n % 2 == 0 else ("cold", "warm")):
            start = time.perf_counter()
            reference = ready if variant == "warm" else practice._make_reference(sentence, voice)
            practice.assess(audio, sentence, model, reference)
            seconds[variant].append(time.perf_counter() - start)
        start = time.perf_counter()
        transcribe(audio, model, TranscribeOptions(language="zh", english="none"))
        seconds["recogniser"].append(time.perf_counter() - start)
        print(f"{sentence}\t{audio_seconds[-1]:.2f} s\twarm {seconds['warm'][-1]:.2f} s\tcold {seconds['cold'][-1]:.2f} s",
              file=sys.stderr, flush=True)
    per5 = 5.0 / np.array(audio_seconds)
    print(f"{len(pairs)} attempts of {min(audio_seconds):.1f}-{max(audio_seconds):.1f} s (median "
          f"{np.median(audio_seconds):.1f} s), learner {LEARNER}, reference {voice}")
    print("variant\tmedian s per check\tp90\tmedian s per 5 s of attempt\tp90")
    for variant, values in seconds.items():
        values = np.array(values)
        print(f"{variant}\t{np.median(values):.2f}\t{np.percentile(values, 90):.2f}\t{np.median(values * per5):.2f}"
              f"\t{np.percentile(values * per5, 90):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
