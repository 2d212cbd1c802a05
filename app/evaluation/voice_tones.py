"""How far a synthesised voice's tones can be trusted: minimal tone sets in a carrier sentence.

    python -m app.evaluation.voice_tones                      # the offered voices
    python -m app.evaluation.voice_tones --voices zf_xiaoxiao zm_yunxi --whisper

Each of TONE_SETS (ten syllables whose initial is voiceless, so the syllable's voiced part stands apart
from the carrier's 是) is spoken in all four tones inside the carrier 这个字是X。, the syllable given to the
model with exactly that tone. Two judges:

* **shape judge**: the contour of the last voiced stretch (the syllable's final), mean removed, against
  the four citation contours (`shape_tone`): a sentence-final syllable sits low in the range whatever its
  tone, so level is left out;
* **Practice's classifier** (`app.practice.tones.classify`, level and shape, speaker range from the whole
  carrier): the judge a learner's attempt gets today, for comparison;
* **Whisper** (`--whisper`): whether the embedded Whisper base writes the intended character in the
  carrier's last place, or a character of another tone of the same set. Whisper's own tone hearing is
  weak and its language model prefers common characters, so this is a second, rougher opinion.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

# (hanzi of tones 1-4, toneless pinyin): voiceless initials only.
TONE_SETS = [("汤糖躺烫", "tang"), ("书熟数树", "shu"), ("八拔把爸", "ba"), ("七骑起气", "qi"), ("通同统痛", "tong"),
             ("飞肥匪费", "fei"), ("诗时使是", "shi"), ("西习洗细", "xi"), ("方房访放", "fang"), ("鸡急几记", "ji")]
_MARKS = {"a": "āáǎà", "e": "ēéěè", "i": "īíǐì", "o": "ōóǒò", "u": "ūúǔù"}


def marked(letters: str, tone: int) -> str:
    """'tang', 3 → 'tǎng' (the vowel pinyin marks: a, e, o first; else the last of i/u)."""
    vowel = next((v for v in "aeo" if v in letters), None) or [c for c in letters if c in "iu"][-1]
    return letters.replace(vowel, _MARKS[vowel][tone - 1], 1)


def last_voiced_stretch(track, min_gap: float = 0.04) -> tuple[float, float] | None:
    """(start, end) of the voiced frames after the last unvoiced gap of at least `min_gap` seconds."""
    voiced = ~np.isnan(track.semitones)
    idx = np.flatnonzero(voiced)
    if idx.size < 3:
        return None
    end = idx[-1]
    start = end
    step = float(np.median(np.diff(track.times))) if track.times.size > 1 else 0.01
    gap = max(1, int(round(min_gap / step)))
    while start > 0 and voiced[max(0, start - gap):start].any():
        start -= 1
    return float(track.times[start]), float(track.times[end])


# Citation contours in Chao levels (1 low - 5 high) at 5 points; compared level-free (mean removed), since
# a sentence-final syllable sits low in the speaker's range whatever its tone.
SHAPES = {1: (5, 5, 5, 5, 5), 2: (3, 3.2, 3.6, 4.3, 5), 3: (2.1, 1.4, 1.1, 1.7, 3.2), 4: (5, 4.2, 3.2, 2.2, 1)}


def shape_tone(values: np.ndarray, speaker_range: float) -> int:
    """The citation contour nearest the syllable's, both mean-removed; one Chao step = a quarter of the
    speaker's range (10th-90th percentile of the carrier's pitch, at least 4 semitones)."""
    step = max(speaker_range, 4.0) / 4.0
    mine = (values - values.mean()) / step
    return min(SHAPES, key=lambda t: float(np.sum((mine - (np.array(SHAPES[t]) - np.mean(SHAPES[t]))) ** 2)))


def judge_pitch(audio16k: np.ndarray) -> tuple[int | None, int | None]:
    """(Practice's classifier, the level-free shape judge) on the carrier's last syllable."""
    from app.practice.tones import classify, contour, pitch_track

    track = pitch_track(audio16k)
    span = last_voiced_stretch(track)
    if span is None:
        return None, None
    values = contour(track, *span)
    shape = shape_tone(values, track.high - track.low) if values is not None else None
    return classify(track, *span)[0], shape


def score_voice(voice: str, model=None) -> dict:
    from app.speech import synthesis
    from app.speech.audio import load_audio

    pitch_right, shape_right, intended, other_tone, n = 0, 0, 0, 0, 0
    for hanzi, letters in TONE_SETS:
        for tone in range(1, 5):
            path = synthesis.speak_word(hanzi[tone - 1], [marked(letters, tone)], [tone], voice)
            audio = load_audio(path)
            n += 1
            classified, shape = judge_pitch(audio)
            pitch_right += classified == tone
            shape_right += shape == tone
            if model is not None:
                segments, _ = model.transcribe(audio, language="zh", beam_size=5, vad_filter=False)
                text = "".join(s.text for s in segments).strip("。. ")
                last = text[-1:] if text else ""
                intended += last == hanzi[tone - 1]
                other_tone += last in hanzi and last != hanzi[tone - 1]
    out = {"carriers": n, "pitch_right": pitch_right, "shape_right": shape_right}
    if model is not None:
        out.update(whisper_intended=intended, whisper_other_tone=other_tone)
    return out


def main(argv: list[str] | None = None) -> int:
    from app.speech import synthesis

    parser = argparse.ArgumentParser(prog="python -m app.evaluation.voice_tones", description=__doc__.split("\n\n")[0])
    parser.add_argument("--voices", nargs="*", default=None, help="default: the offered voices")
    parser.add_argument("--whisper", action="store_true", help="also ask the embedded Whisper base")
    parser.add_argument("--write", action="store_true",
                        help="store each voice's figures in app/speech/voices.json (the menus put the best-toned first)")
    args = parser.parse_args(argv)
    reason = synthesis.unavailable_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    voices = args.voices or [v.name for v in synthesis.offered_voices()]
    model = None
    if args.whisper:
        from app.speech.model import load_model

        model = load_model(None, compute_type="int8")
    print("voice\tcarriers\tshape judge: intended tone\tPractice's classifier: intended tone"
          + ("\tWhisper: intended\tWhisper: other tone" if model else ""))
    table = synthesis._measured()
    for voice in voices:
        r = score_voice(voice, model)
        if args.write:
            table.setdefault("voices", {}).setdefault(voice, {"cer": None, "offered": False})["tones"] = r
        extra = f"\t{r['whisper_intended']}\t{r['whisper_other_tone']}" if model else ""
        print(f"{voice}\t{r['carriers']}\t{r['shape_right']}\t{r['pitch_right']}{extra}", flush=True)
    if args.write:
        table["tones_command"] = "python -m app.evaluation.voice_tones --voices … --write"
        synthesis._VOICES_FILE.write_text(json.dumps(table, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {synthesis._VOICES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
