"""Syllables said alone, in the four citation tones, by many voices: the tone model's lesson in how a
syllable spoken by itself sounds (issue 26).

    python -m training.citation_syllables ../citation-syllables [--per-voice 100] [--speakers 4]

The tone model had heard only connected speech, where a third tone is a short low fall; a learner who
checks one syllable, or a pinyin chart, says the full citation shape (a long dip and a rise), which it
heard as a 2nd or 1st tone. Kokoro's syllables said alone carry no usable tone (the voices issue), so
the voice gives each syllable its sounds and Praat gives it its tone: the syllable is spoken once by a
voice, then resynthesised by PSOLA (parselmouth's Manipulation, overlap-add) with an F0 contour and a
duration for each citation tone, Chao's 55, 35, 214 and 51, drawn with the variation speakers show
(`contour`): register and range per speaker, height per syllable, where a tone turns, how deep the
third tone dips and whether it rises again (a half third, 21, now and then), the fourth tone's fall,
slower third and quicker fourth tones, loudness that follows pitch. The shapes come from the phonetic
descriptions (Chao; Xu 1997's isolated-syllable contours), not from the real speakers the model is
judged on, which stay held out.

Each voice is read as SPEAKERS "speakers", each with its own register, range and tempo; a speaker says
every one of its syllables in all four tones, as a chart does. Voices are split as training.tone_corpus
splits them (train voices for training, the dev voice for choices). The syllables are those of zh-synth's train
sentences (any Mandarin syllable would do: its sounds only carry the pitch).

Writes DIR/clips/SPEAKER/PINYIN.wav and DIR/syllables.tsv in training.tone_syllables' layout (path,
pinyin, tone, speaker, sex, source), so `training.tone_model --citation DIR` reads it as it reads real
syllables; the speaker id is VOICE-cN. Resumable: a clip already written is kept.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.base.progress import progress
from app.speech import synthesis
from app.speech.audio import SAMPLE_RATE, resample
from training.tone_corpus import VOICE_SPLITS, cannot_speak_from

SPEAKERS = 4  # per voice
SEED = 2026
# Seconds of voicing a syllable said alone lasts, by tone, at tempo 1 (Xu 1997: the third tone is the
# longest, the fourth the shortest); a speaker's tempo scales all of them.
DURATIONS = {1: 0.42, 2: 0.44, 3: 0.52, 4: 0.34}
COLUMNS = ("path", "pinyin", "tone", "speaker", "sex", "source")


def contour(tone: int, rng: random.Random) -> list[tuple[float, float]]:
    """(time 0-1 through the voiced part, Chao level 1-5) points of one citation tone, drawn."""
    u = rng.uniform
    if tone == 1:  # 55: high and level, sometimes easing down at the end
        start = u(4.4, 5.1)
        return [(0.0, start - u(0.0, 0.3)), (0.15, start), (1.0, start - u(0.0, 0.6))]
    if tone == 2:  # 35: mid rising to high, often a small dip first
        start, turn = u(2.2, 3.2), u(0.1, 0.4)
        return [(0.0, start), (turn, start - u(0.0, 0.5)), (1.0, u(4.2, 5.2))]
    if tone == 3:  # 214: a low dip; mostly a rise after it, sometimes (a half third) none
        start, turn, low = u(2.0, 3.3), u(0.35, 0.7), u(0.5, 1.5)
        end = u(2.8, 4.8) if rng.random() < 0.8 else low + u(0.3, 1.0)
        return [(0.0, start), (turn, low), (1.0, end)]
    # 51: a fall from high to low, sometimes a short rise into its peak
    start, peak = u(4.3, 5.2), u(0.0, 0.25)
    return [(0.0, start - u(0.0, 0.4)), (peak, start), (1.0, u(0.8, 2.3))]


def _semitones(points: list[tuple[float, float]], bottom: float, span: float, lift: float, n: int) -> np.ndarray:
    """The contour at n points, in semitones re 100 Hz: level 1 at `bottom`, 5 at bottom + span."""
    t = np.linspace(0.0, 1.0, n)
    levels = np.interp(t, [p for p, _ in points], [v for _, v in points])
    levels = np.convolve(np.pad(levels, 2, mode="edge"), np.ones(5) / 5, mode="valid")  # no corners
    return bottom + (levels + lift - 1.0) / 4.0 * span


def resynthesise(audio: np.ndarray, voiced: tuple[float, float], semitones: np.ndarray, seconds: float,
                 loudness: float) -> np.ndarray:
    """`audio` (16 kHz) with the voiced part's F0 replaced by `semitones` and stretched to `seconds`;
    `loudness`: dB per semitone above the contour's mean (speakers get louder as they go higher)."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=SAMPLE_RATE)
    manipulation = call(sound, "To Manipulation", 0.01, 60, 600)
    pitch = call("Create PitchTier", "pitch", 0.0, sound.duration)
    times = np.linspace(voiced[0], voiced[1], len(semitones))
    for t, st in zip(times, semitones):
        call(pitch, "Add point", float(t), float(100.0 * 2.0 ** (st / 12.0)))
    call([pitch, manipulation], "Replace pitch tier")
    stretch = seconds / max(voiced[1] - voiced[0], 0.05)
    duration = call("Create DurationTier", "duration", 0.0, sound.duration)
    call(duration, "Add point", float(voiced[0]), stretch)
    call([manipulation, duration], "Replace duration tier")
    out = call(manipulation, "Get resynthesis (overlap-add)").values[0]
    # Loudness following pitch, over the stretched voiced part.
    begin, end = voiced[0], voiced[0] + seconds
    t = np.arange(out.size) / SAMPLE_RATE
    inside = (t >= begin) & (t <= end)
    st = np.interp(t[inside], begin + (times - voiced[0]) * stretch, semitones)
    gain = np.ones(out.size)
    gain[inside] = 10.0 ** (loudness * (st - semitones.mean()) / 20.0)
    out = out * gain
    return (out / max(np.abs(out).max(), 1e-6) * 0.7).astype(np.float32)


def syllable_pool(zh_synth: Path) -> list[str]:
    """Distinct toneless syllables (numbered letters, e.g. 'ma') of zh-synth's train sentences."""
    from app.evaluation.spoken_corpus import sentences_by_split
    from app.language.pinyin import syllables
    from app.speech.synthesis import letters_of

    seen: dict[str, None] = {}
    for sentence in sentences_by_split(zh_synth, None)["train"]:
        for s in syllables(sentence):
            if s.marked and s.marked.isalpha() and s.marked != "r":
                seen.setdefault(letters_of(s.marked), None)
    return list(seen)


@dataclass(frozen=True)
class Speaker:
    """One drawn speaker of a voice: register and range (semitones re 100 Hz), tempo, loudness."""
    name: str
    sex: str
    bottom: float  # level 1: a man's about 75-110 Hz, a woman's 150-210 Hz
    span: float  # level 1 to level 5
    tempo: float  # scales DURATIONS
    loudness: float  # dB per semitone above the syllable's mean pitch

    @classmethod
    def drawn(cls, voice: str, n: int, seed: int = SEED) -> "Speaker":
        rng, sex = random.Random(f"{seed}-{voice}-c{n}"), "f" if voice.startswith("zf_") else "m"
        bottom = rng.uniform(-5.0, 1.5) if sex == "m" else rng.uniform(7.0, 13.0)
        return cls(f"{voice}-c{n}", sex, bottom, rng.uniform(7.0, 14.0), rng.uniform(0.8, 1.5), rng.uniform(0.0, 0.8))


def said(source: np.ndarray, voiced: tuple[float, float], speaker: Speaker, tone: int, rng: random.Random) -> np.ndarray:
    """The source syllable said alone by `speaker` in `tone`."""
    semitones = _semitones(contour(tone, rng), speaker.bottom, speaker.span, rng.gauss(0.0, 0.3), 40)
    wobble = np.convolve([rng.gauss(0.0, 0.25) for _ in range(44)], np.ones(5) / 5, mode="valid")
    seconds = DURATIONS[tone] * speaker.tempo * rng.uniform(0.85, 1.15)
    return resynthesise(source, voiced, semitones + wobble, seconds, speaker.loudness)


def write(out: Path, zh_synth: Path, per_voice: int, speakers: int, seed: int = SEED,
          splits: tuple[str, ...] = ("train", "dev")) -> int:
    from app.practice.tones import pitch_track, voiced_span

    listed = out / "syllables.tsv"
    done = set()
    if listed.is_file():
        with open(listed, encoding="utf-8") as f:
            done = {r["path"] for r in csv.DictReader(f, delimiter="\t")}
    pool = syllable_pool(zh_synth)
    new = not listed.is_file()
    out.mkdir(parents=True, exist_ok=True)
    with open(listed, "a", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        if new:
            writer.writerow(COLUMNS)
        for voice in (v for split in splits for v in VOICE_SPLITS[split]):
            drawn = [Speaker.drawn(voice, n, seed) for n in range(speakers)]
            for letters in progress(random.Random(f"{seed}-{voice}").sample(pool, min(per_voice, len(pool))),
                                    unit="syllable", desc=voice):
                todo = [(s, tone, f"clips/{s.name}/{letters}{tone}.wav") for s in drawn for tone in (1, 2, 3, 4)]
                todo = [job for job in todo if job[2] not in done]
                if not todo:
                    continue
                source = resample(synthesis.speak_phonemes(synthesis.syllable_ipa(letters, 1) + ".", voice),
                                  synthesis.SAMPLE_RATE)
                voiced = voiced_span(pitch_track(source))
                if voiced is None:
                    continue
                for speaker, tone, path in todo:
                    audio = said(source, voiced, speaker, tone, random.Random(f"{seed}-{path}"))
                    (out / path).parent.mkdir(parents=True, exist_ok=True)
                    synthesis.write_wav(audio, out / path)
                    writer.writerow((path, f"{letters}{tone}", tone, speaker.name, speaker.sex, f"kokoro {voice} + PSOLA"))
                f.flush()
    with open(listed, encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.citation_syllables",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--zh-synth", type=Path, required=True, help="zh-synth's folder: its train sentences' syllables")
    parser.add_argument("--per-voice", type=int, default=100, help="syllables per voice")
    parser.add_argument("--speakers", type=int, default=SPEAKERS, help="speakers drawn per voice")
    parser.add_argument("--splits", nargs="+", choices=("train", "dev"), default=["train", "dev"])
    args = parser.parse_args(argv)
    problem = cannot_speak_from(args.zh_synth)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"{write(args.out, args.zh_synth, args.per_voice, args.speakers, splits=tuple(args.splits))} syllables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
