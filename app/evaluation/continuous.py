"""Continuous speech as a video has it: clips joined with short gaps, transcribed as one file, scored
for where the reader sees sentences and clauses end.

    python -m app.evaluation.continuous real ../real-speech --out ../continuous
    python -m app.evaluation.continuous zh-synth ../shared/data/zh-synth --out ../continuous
    python -m app.evaluation.continuous real ../real-speech --out ../continuous --batch-size 1   # sequential path
    python -m app.evaluation.continuous voices ../shared/data/zh-synth --out ../continuous   # many-voice narration

`real`: every clip of the real-speech set (`python -m training.real_speech fetch ../real-speech`), dev
then test in list order, 0.2–0.4 s of silence between clips. `zh-synth`: a seeded sample of test
clips up to `--minutes`, 0.12–0.3 s between them. `voices`: the same sentences narrated by the offered
synthesised voices, a paragraph (3–5 sentences) each in turn, speeds 0.9–1.1, 0.12–0.3 s between sentences. Gaps are drawn with `--seed`, so the file is the
same every time. The file is transcribed by the app's pipeline (English none), its SRT and TXT
written, and scored against the clips' transcripts:

* **clause breaks**: a reference clause end (after ，。？！；： or a clip's end) is *found* when the
  reader sees a break at that place in the SRT: a cue end, a line end, punctuation, or a space
  between hanzi. Precision: the SRT's breaks that stand at a reference clause end. Places are
  matched through the character alignment of the normalised texts (rapidfuzz's Levenshtein
  opcodes), so a recognition error next to a break does not move it;
* **run-on lines**: SRT hanzi lines with a reference *sentence* end (after 。？！ or a clip's end)
  inside them and nothing visible there;
* **punctuation**: in TXT (every mark kept), precision of the marks (a mark at a reference clause
  end) and recall of the reference clause ends;
* **CER**: normalised, `app.text.cer`.

The recogniser's segments are saved beside the audio (`NAME-bN.segments.json`); `--reuse` scores them
again without decoding, so the cue and punctuation rules can be iterated on in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETS = {"real": (0.2, 0.4), "zh-synth": (0.12, 0.3), "voices": (0.12, 0.3)}
PARAGRAPH = (3, 5)  # `voices`: sentences a voice narrates before the next voice takes over
CLAUSE_MARKS = set("，。？！；：")
SENTENCE_MARKS = set("。？！")
SEED = 1234


@dataclass
class Reference:
    texts: list[str]  # each clip's transcript, punctuation kept
    spans: list[tuple[float, float]]  # each clip's place in the joined file, seconds

    def chars_and_breaks(self) -> tuple[str, dict[int, bool]]:
        """The normalised text and its clause ends: {characters before the end: is a sentence end}.
        A clip's end is a sentence end."""
        from app.language.text import normalize_for_cer

        chars: list[str] = []
        breaks: dict[int, bool] = {}
        for text in self.texts:
            for ch in text:
                if normalize_for_cer(ch):
                    chars.append(normalize_for_cer(ch))
                elif ch in CLAUSE_MARKS and chars:
                    breaks[len(chars)] = breaks.get(len(chars), False) or ch in SENTENCE_MARKS
            if chars:
                breaks[len(chars)] = True
        return "".join(chars), breaks


def _narrators(rng: random.Random):
    """An endless sequence of (voice, sentences left): the offered voices take turns, a paragraph each."""
    from app.speech import synthesis

    voices = [v.name for v in synthesis.offered_voices()]
    if not voices:
        raise SystemExit("error: no voice is offered (python -m app.evaluation.voices … --write)")
    state = {"voice": None, "left": 0}

    def next_voice() -> str:
        if state["left"] == 0:
            state["voice"] = rng.choice([v for v in voices if v != state["voice"]] or voices)
            state["left"] = rng.randint(*PARAGRAPH)
        state["left"] -= 1
        return state["voice"]
    return next_voice


def _narrated(text: str, rng: random.Random, narrators, tmp: Path) -> np.ndarray:
    """`text` spoken by the narrating voice, at a speed drawn per sentence, as 16-kHz int16."""
    from app.speech import synthesis
    from app.speech.audio import load_audio

    path = synthesis.write_wav(synthesis.speak(text, narrators(), round(rng.uniform(0.9, 1.1), 2)), tmp / "s.wav")
    return load_audio(path, dtype=np.int16)


def build(kind: str, data: Path, out: Path, minutes: float, seed: int,
          clips: int | None = None) -> tuple[Path, Reference]:
    """The joined WAV and its reference (written once; a later call reads them back). `clips`:
    zh-synth stops after that many clips too (app.evaluation.live)."""
    from app.base.corpus import clip_path, read_split
    from app.speech.audio import SAMPLE_RATE, load_audio, write_audio

    wav, meta = out / f"{kind}.wav", out / f"{kind}.json"
    if wav.is_file() and meta.is_file():
        saved = json.loads(meta.read_text(encoding="utf-8"))
        return wav, Reference(saved["texts"], [tuple(s) for s in saved["spans"]])
    rng = random.Random(seed)
    if kind == "real":
        rows = [(data, row) for split in ("dev", "test") for row in read_split(data, split)]
    else:
        rows = [(data, row) for row in read_split(data, "test")]
        rng.shuffle(rows)
    low, high = SETS[kind]
    narrators = _narrators(rng) if kind == "voices" else None
    tmp = Path(tempfile.mkdtemp(prefix="zimu-narration-"))
    pieces, texts, spans, at = [], [], [], 0.0
    for folder, row in rows:
        if kind != "real" and (at >= minutes * 60 or (clips and len(texts) >= clips)):
            break
        audio = (_narrated(row["sentence"], rng, narrators, tmp) if kind == "voices"
                 else load_audio(clip_path(folder, row), dtype=np.int16))
        if pieces:
            gap = rng.uniform(low, high)
            pieces.append(np.zeros(int(round(gap * SAMPLE_RATE)), dtype=np.int16))
            at += pieces[-1].size / SAMPLE_RATE
        pieces.append(audio)
        spans.append((at, at + audio.size / SAMPLE_RATE))
        texts.append(row["sentence"])
        at = spans[-1][1]
    out.mkdir(parents=True, exist_ok=True)
    write_audio(np.concatenate(pieces), wav)
    meta.write_text(json.dumps({"texts": texts, "spans": spans, "seed": seed, "gaps_s": [low, high]},
                               ensure_ascii=False, indent=1), encoding="utf-8")
    return wav, Reference(texts, spans)


# ---- what the reader sees --------------------------------------------------------------------------

@dataclass
class Shown:
    """A hypothesis text as a reader sees it: normalised characters, the places (characters before)
    where a break is visible, and for SRT the (start, end) character range of each hanzi line."""

    chars: str
    breaks: set[int]
    lines: list[tuple[int, int]]


def shown_srt(path: Path) -> Shown:
    """Breaks of an SRT file: each cue's and line's end, any punctuation or space between hanzi."""
    from app.language.subtitles import load_events
    from app.language.text import has_cjk, normalize_for_cer

    chars: list[str] = []
    breaks: set[int] = set()
    lines: list[tuple[int, int]] = []
    for event in load_events(path):
        for line in event.plaintext.split("\n"):
            if not has_cjk(line):
                continue
            first = len(chars)
            for ch in line:
                norm = normalize_for_cer(ch)
                if norm:
                    chars.append(norm)
                elif chars:
                    breaks.add(len(chars))  # punctuation or a space
            breaks.add(len(chars))
            lines.append((first, len(chars)))
    return Shown("".join(chars), breaks, lines)


def shown_marks(text: str) -> Shown:
    """Punctuation marks of a plain transcript (TXT): spaces and line ends are not marks."""
    from app.language.text import normalize_for_cer

    chars: list[str] = []
    breaks: set[int] = set()
    for ch in text:
        norm = normalize_for_cer(ch)
        if norm:
            chars.append(norm)
        elif not ch.isspace() and chars:
            breaks.add(len(chars))
    return Shown("".join(chars), breaks, [])


def hypothesis_places(reference: str, hypothesis: str) -> list[tuple[int, int]]:
    """For each place in the reference (0..len), the range of hypothesis places aligned with it: one
    place where characters match or are substituted, a range over inserted characters."""
    from rapidfuzz.distance import Levenshtein

    low = [len(hypothesis)] * (len(reference) + 1)
    high = [0] * (len(reference) + 1)

    def put(i: int, j: int) -> None:
        low[i], high[i] = min(low[i], j), max(high[i], j)

    for op in Levenshtein.opcodes(reference, hypothesis):
        if op.tag in ("equal", "replace"):
            n, m = op.src_end - op.src_start, op.dest_end - op.dest_start
            for k in range(n + 1):
                put(op.src_start + k, op.dest_start + round(k * m / max(n, 1)))
            if n == 0:
                put(op.src_start, op.dest_end)
        elif op.tag == "delete":
            for i in range(op.src_start, op.src_end + 1):
                put(i, op.dest_start)
        else:  # insert
            put(op.src_start, op.dest_start)
            put(op.src_start, op.dest_end)
    return list(zip(low, high))


def break_scores(reference: str, ref_breaks: dict[int, bool], shown: Shown) -> dict:
    """Precision, recall and F1 of the shown breaks at the reference's clause ends (the file's own
    end left out: every transcript ends there), and the reference sentence ends left unseen."""
    places = hypothesis_places(reference, shown.chars)
    inner = {i: s for i, s in ref_breaks.items() if 0 < i < len(reference)}
    found, missed_sentences, covered = 0, [], set()
    for i, sentence in inner.items():
        low, high = places[i]
        span = set(range(low, high + 1))
        covered |= span
        if span & shown.breaks:
            found += 1
        elif sentence:
            missed_sentences.append(low)
    shown_breaks = {j for j in shown.breaks if 0 < j < len(shown.chars)}
    right = len(shown_breaks & covered)
    precision = right / len(shown_breaks) if shown_breaks else 0.0
    recall = found / len(inner) if inner else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    run_on = {n for n, (a, b) in enumerate(shown.lines) for j in missed_sentences if a < j < b}
    return {"breaks": len(inner), "shown": len(shown_breaks), "found": found, "right": right,
            "precision": precision, "recall": recall, "f1": f1, "run_on_lines": len(run_on),
            "lines": len(shown.lines)}


# ---- decoding, cached ------------------------------------------------------------------------------

def decode(wav: Path, batch_size: int | None, cache: Path, reuse: bool) -> tuple[list[list], bool]:
    """The recogniser's segments of the file, batch by batch (saved to `cache`; read back with
    `reuse`), and whether they came from the batched path."""
    from faster_whisper.transcribe import Segment, Word

    from app.speech.audio import SAMPLE_RATE, load_audio
    from app.speech.transcribe import TranscribeOptions, decode_segments, uses_batched

    options = TranscribeOptions(language="zh", english="none")
    if batch_size:
        options.batch_size = batch_size
    if reuse and cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        batches = [[Segment(**{**s, "words": [Word(**w) for w in s["words"] or []]}) for s in batch]
                   for batch in saved["batches"]]
        return batches, saved["batched"]
    from app.speech.model import load_model

    audio = load_audio(wav)
    _, batches = decode_segments(audio, load_model(), options)
    batched = uses_batched(options, audio.size / SAMPLE_RATE)
    cache.write_text(json.dumps({"batched": batched, "batches": [[dataclasses.asdict(s) for s in batch]
                                                                 for batch in batches]},
                                ensure_ascii=False), encoding="utf-8")
    return batches, batched


def score(kind: str, data: Path, out: Path, batch_size: int | None, reuse: bool, minutes: float, seed: int) -> dict:
    from app.language.subtitles import CueRules, to_text, write_subtitles
    from app.language.text import cer
    from app.speech.transcribe import cues_of_segments

    wav, reference = build(kind, data, out, minutes, seed)
    batches, batched = decode(wav, batch_size, out / f"{kind}-b{batch_size or 'default'}.segments.json", reuse)
    cues = cues_of_segments(batches, batched, CueRules())
    srt = out / f"{kind}-b{batch_size or 'default'}.srt"
    write_subtitles(cues, srt, ["hanzi"])
    text = to_text(cues, ["hanzi"])
    srt.with_suffix(".txt").write_text(text, encoding="utf-8")
    ref_chars, ref_breaks = reference.chars_and_breaks()
    result = break_scores(ref_chars, ref_breaks, shown_srt(srt))
    marks = break_scores(ref_chars, ref_breaks, shown_marks(text))
    result.update(punctuation_precision=marks["precision"], punctuation_recall=marks["recall"],
                  punctuation_marks=marks["shown"], cer=cer(["".join(reference.texts)], [text]),
                  cues=len(cues), seconds=reference.spans[-1][1], batched=batched, srt=str(srt))
    return result


def report(kind: str, result: dict) -> str:
    path = "batched" if result["batched"] else "sequential"
    return (f"{kind} ({result['seconds'] / 60:.1f} min, {path}, {result['cues']} cues): clause breaks "
            f"{result['breaks']} in the reference, {result['shown']} shown; precision {result['precision']:.2f}, "
            f"recall {result['recall']:.2f}, F1 {result['f1']:.2f}; run-on lines {result['run_on_lines']} of "
            f"{result['lines']}; punctuation in TXT: {result['punctuation_marks']} marks, precision "
            f"{result['punctuation_precision']:.2f}, recall {result['punctuation_recall']:.2f}; CER {result['cer']:.2%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluation.continuous", description=__doc__.split("\n\n")[0])
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("data", type=Path, help="the real-speech folder or zh-synth (Common Voice layout)")
    parser.add_argument("--out", type=Path, default=None, help="where the file, its segments and SRT go "
                                                               "(default: a temporary folder)")
    parser.add_argument("--batch-size", type=int, default=None, help="1: the sequential path (default: the app's)")
    parser.add_argument("--minutes", type=float, default=3.0, help="zh-synth: length of the file")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--reuse", action="store_true", help="score the saved segments again, no decoding")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    from app.base.errors import UserError

    try:
        with tempfile.TemporaryDirectory(prefix="zimu-continuous-") as tmp:
            result = score(args.set, args.data, args.out or Path(tmp), args.batch_size, args.reuse,
                           args.minutes, args.seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(args.set, result))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
