"""How well Practice finds each syllable of an attempt: reference alignment against Whisper's spans.

    python -m app.evaluation.alignment --sentences 40

HSK sentences of zh-synth's dev and test splits (`app.evaluation.spoken_corpus.sentences_by_split`).
The reference is each sentence read by an offered default voice (the female one, then the male one) at
speed 1.0, as Practice reads it; the "learner" is each held-out voice (LEARNERS) other than the reference,
at a speed drawn from 0.8-1.2 with `--seed`. Both come from `speak_timed`, so the learner's true syllable
spans are known from the model's own durations. Two timings of the learner's syllables:

* **dtw**: `app.practice.align.align_to_reference` (the reference's spans carried through the warping);
* **whisper**: today's fallback, the embedded Whisper's word times spread over the hanzi, then
  `refine_spans`, matched to the target syllables as `assess` does (`--no-whisper` skips it).

Reported per method: median and 90th-percentile absolute boundary error (each syllable's start and
end, ms), the share of syllables whose found span's centre lies inside the true span (a syllable with no
span counts as outside), how many got a span, and the aligner's time per 5 s of attempt. Rows are per
pair, reference → learner (the default voices are the two held-out ones, so each is the other's learner).

Measured (`--sentences 40`, seed 26: 80 attempts, 604 syllables, 227 s of audio, on a shared 2-core machine):

    method   pair                    median ms  p90 ms  centre inside
    dtw      zf_xiaoxiao → zm_yunxi     10        30       97.7 %
    dtw      zm_yunxi → zf_xiaoxiao     10        40       98.3 %
    dtw      all                        10        35       98.0 %
    whisper  zf_xiaoxiao → zm_yunxi     82       219       45.4 %
    whisper  zm_yunxi → zf_xiaoxiao    139       260       34.1 %
    whisper  all                       114       244       39.7 %   (99.7 % of syllables got a span)

    dtw alignment: 0.086 s per 5 s of attempt
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LEARNERS = ("zf_xiaoxiao", "zm_yunxi")  # the tone corpus's held-out test voices
SPEEDS = (0.8, 1.2)
SEED = 26
DEFAULT_CORPUS = Path("../shared/data/zh-synth")


@dataclass
class Tally:
    errors: list[float] = field(default_factory=list)  # seconds, starts and ends
    inside: int = 0
    with_span: int = 0
    syllables: int = 0

    def add(self, found: list, truth: list) -> None:
        for got, true in zip(found, truth):
            if true is None:
                continue
            self.syllables += 1
            if got is None:
                continue
            self.with_span += 1
            self.errors += [abs(got[0] - true[0]), abs(got[1] - true[1])]
            self.inside += true[0] <= (got[0] + got[1]) / 2 <= true[1]

    def row(self, name: str) -> str:
        ms = np.array(self.errors) * 1000 if self.errors else np.array([np.nan])
        return (f"{name}\t{self.syllables}\t{self.with_span / max(1, self.syllables):.1%}\t{np.median(ms):.0f}"
                f"\t{np.percentile(ms, 90):.0f}\t{self.inside / max(1, self.syllables):.1%}")


def whisper_spans(audio: np.ndarray, text: str, model) -> list:
    """Today's timing of the target syllables: Whisper's hanzi times, refined onto the voice."""
    from app.practice.assess import compare, hanzi_times
    from app.practice.tones import pitch_track, refine_spans
    from app.speech.transcribe import TranscribeOptions, transcribe

    transcript = transcribe(audio, model, TranscribeOptions(language="zh", english="none"))
    results = compare(text, transcript.text, refine_spans(pitch_track(audio), hanzi_times(transcript)))
    return [(r.start, r.end) if r.start is not None else None for r in results if r.target is not None]


@dataclass
class Run:
    tallies: dict = field(default_factory=dict)  # (method, "reference → learner") → Tally
    align_seconds: float = 0.0
    attempt_seconds: float = 0.0
    pairs: int = 0

    def tally(self, method: str, voice: str) -> Tally:
        return self.tallies.setdefault((method, voice), Tally())


def measure_sentence(text: str, references: list[str], rng: random.Random, model, run: Run) -> None:
    from app.language.pinyin import syllables
    from app.practice.align import align_to_reference
    from app.speech import synthesis
    from app.speech.audio import resample

    expected = [s.marked for s in syllables(text)]
    for ref_voice in references:
        ref = synthesis.speak_timed(text, ref_voice, 1.0)
        if [s.marked for s in ref.syllables] != expected:  # as Practice: no reference then
            return
        ref_audio = resample(ref.audio, synthesis.SAMPLE_RATE)
        for learner in LEARNERS:
            if learner == ref_voice:
                continue
            said = synthesis.speak_timed(text, learner, rng.uniform(*SPEEDS))
            audio = resample(said.audio, synthesis.SAMPLE_RATE)
            began = time.perf_counter()
            found = align_to_reference(audio, ref_audio, ref.spans)
            run.align_seconds += time.perf_counter() - began
            run.attempt_seconds += len(audio) / 16000
            run.pairs += 1
            pair = f"{ref_voice} → {learner}"
            run.tally("dtw", pair).add(found, said.spans)
            if model is not None:
                run.tally("whisper", pair).add(whisper_spans(audio, text, model), said.spans)


def report(run: Run) -> None:
    print("method\tpair\tsyllables\twith span\tmedian ms\tp90 ms\tcentre inside")
    for method in ("dtw", "whisper"):
        every = Tally()
        for (name, pair), t in run.tallies.items():
            if name != method:
                continue
            print(t.row(f"{method}\t{pair}"))
            every.errors += t.errors
            every.inside, every.with_span, every.syllables = (every.inside + t.inside, every.with_span + t.with_span,
                                                              every.syllables + t.syllables)
        if every.syllables:
            print(every.row(f"{method}\tall"))
    per5 = 5 * run.align_seconds / max(run.attempt_seconds, 1e-9)
    print(f"dtw alignment: {run.pairs} attempts, {run.attempt_seconds:.0f} s of audio, {per5:.3f} s per 5 s of attempt")


def main(argv: list[str] | None = None) -> int:
    from app.base.progress import progress
    from app.evaluation.spoken_corpus import sentences_by_split
    from app.speech import synthesis

    parser = argparse.ArgumentParser(prog="python -m app.evaluation.alignment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=40, help="how many dev/test sentences (drawn with --seed)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="zh-synth: which HSK sentences are dev/test")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-whisper", action="store_true", help="only the reference alignment")
    args = parser.parse_args(argv)
    if args.sentences < 1:
        print("error: --sentences must be at least 1", file=sys.stderr)
        return 1
    if not (args.corpus / "dev.tsv").is_file():
        print(f"error: {args.corpus} has no dev.tsv (zh-synth, Common Voice layout)", file=sys.stderr)
        return 1
    reason = synthesis.unavailable_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    splits = sentences_by_split(args.corpus, None)
    rng = random.Random(args.seed)
    pool = splits["dev"] + splits["test"]
    chosen = rng.sample(pool, min(args.sentences, len(pool)))
    model = None
    if not args.no_whisper:
        from app.speech.model import load_model

        model = load_model()
    references = list(dict.fromkeys([synthesis.default_voice(), synthesis.default_voice("male")]))
    run = Run()
    for text in progress(chosen, unit="sentence"):
        measure_sentence(text, references, rng, model, run)
    report(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
