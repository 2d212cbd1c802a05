"""chrF of each English source against the English translations that the HSK sentence bank
(PyPI hsk-sentences-audio) gives for the same sentences: zh-synth clip ids are its sentence ids.

    python -m app.evaluation.english ../shared/data/zh-synth --split test --limit 100 --sources whisper,cedict
    python -m app.evaluation.english ../shared/data/zh-synth --split test --limit 100 --sources auto,cedict --joined

Each clip is transcribed once (the app's pipeline, no English), then every source fills the English
of a copy of its cues, as the app would. The hypothesis of a clip is its cues' English joined, the
"[gloss]" mark and the " · " between glosses taken out (they are layout, not translation).
chrF is sacrebleu's CHRF (character 6-grams, β = 2), over the whole corpus. Also counted: lines with
Chinese in them and empty lines (a learner can use neither). --csv writes every clip's lines.

--joined: the clips joined into one long file (0.6 s of silence between them), transcribed once per
source as a user's file is (the batched path, Whisper's English decoded with the text). Scored
"by sentence": each cue's English goes back to the clip most of its words fall in, and clips that one
sentence of the transcript (or one cue) runs over are scored as one unit (`scoring_units`: the same
units whatever the English source); also given: the whole
file's English against all the references joined ("as one document", which forgives English placed
on the wrong sentence and so reads higher).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

from app.speech.audio import load_audio
from app.base.errors import UserError
from app.base.corpus import read_split, write_rows
from app.speech.model import load_model
from app.base.progress import progress
from app.language.text import has_cjk
from app.speech.transcribe import TranscribeOptions, transcribe
from app.language.translate import ENGLISH_SOURCES, LLMConfig
from app.language.gloss import GLOSS_MARK
from app.speech.english import english_for


def reference_english() -> dict[str, str]:
    """Sentence id (hsk3-0438) → the bank's English."""
    from hsk_sentences_audio import load_sentences

    return {s["id"]: s["translation"]["en"] for s in load_sentences()}


def shown_text(cue_english: list[str]) -> str:
    """What a clip's English says, without the layout of glosses. A sentence's English shown whole
    on each of its cues (too short to split) is read once, as the learner reads it."""
    lines = [line for i, line in enumerate(cue_english) if i == 0 or line != cue_english[i - 1]]
    text = " ".join(lines).replace(GLOSS_MARK, " ").replace(" · ", " ").replace("\n", " ")
    return " ".join(text.split())


def scoring_units(cues, spans: list[tuple[float, float]], references: list[str]) -> tuple[list[str], list[str]]:
    """A long file's English and the references of the clips it was joined from, in matching units.
    A sentence of the transcript (`app.language.punctuation.sentences`, where its marks end it) that
    runs over several clips joins them into one unit, and so does a cue that does, so no English is
    scored against a sentence it was not made for and none is lost; a clip no cue reaches is a unit
    with no English. The units come from the transcript, not from the English source, so sources
    (and versions of one) are scored in the same units. A word belongs to the clip its middle falls
    in (or the nearest); a cue's English to the clip most of its words are in. Returns (hypotheses,
    references), one of each per unit."""
    from app.language.punctuation import sentences

    def clip_of(word) -> int:
        middle = (word.start + word.end) / 2
        return min(range(len(spans)), key=lambda i: max(spans[i][0] - middle, middle - spans[i][1], 0.0))

    def clips(words) -> list[int]:
        return [clip_of(w) for w in words if not w.is_punct] or [clip_of(w) for w in words]

    joined_to_next = [False] * len(spans)

    def join(touched: list[int]) -> None:
        for i in range(min(touched, default=0), max(touched, default=0)):
            joined_to_next[i] = True

    for sentence in sentences([cue.words for cue in cues]):
        join(clips([cues[c].words[w] for c, w in sentence]))
    best_clip = []
    for cue in cues:
        touched = clips(cue.words)
        join(touched)
        best_clip.append(max(set(touched), key=lambda i: (touched.count(i), -i)))
    unit_of, unit = [], 0
    for i in range(len(spans)):
        unit_of.append(unit)
        unit += not joined_to_next[i]
    lines: list[list[str]] = [[] for _ in range(unit)]
    for cue, clip in zip(cues, best_clip):
        lines[unit_of[clip]].append(cue.english)
    refs: list[list[str]] = [[] for _ in range(unit)]
    for i, reference in enumerate(references):
        refs[unit_of[i]].append(reference)
    return [shown_text(u) for u in lines], [" ".join(r) for r in refs]


def chrf(hypotheses: list[str], references: list[str]) -> float:
    from sacrebleu.metrics import CHRF

    return CHRF().corpus_score(hypotheses, [references]).score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluation.english", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="Common Voice layout folder, e.g. ../shared/data/zh-synth")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=100, help="first N clips with a reference (0 = all)")
    parser.add_argument("--sources", default="whisper,cedict",
                        help=f"comma-separated, from {','.join(k for k in ENGLISH_SOURCES if k != 'none')}")
    parser.add_argument("--llm-url", default=None)
    parser.add_argument("--llm-model", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--csv", type=Path, default=None, help="every clip's reference and lines")
    parser.add_argument("--joined", action="store_true", help="score the clips joined into one long file")
    args = parser.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    bad = [s for s in sources if s not in ENGLISH_SOURCES or s == "none"]
    try:
        if bad or not sources:
            raise UserError(f"unknown sources {','.join(bad) or '(none)'}; choose from "
                            f"{','.join(k for k in ENGLISH_SOURCES if k != 'none')}")
        if "llm" in sources and not (args.llm_url and args.llm_model):
            raise UserError("the llm source needs --llm-url and --llm-model")
        references = reference_english()
        rows = [r for r in read_split(args.data, args.split) if Path(r["path"]).stem in references]
        rows = rows[: args.limit] if args.limit else rows
        model = load_model(args.model)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.joined:
        return joined_file(args, rows, references, sources, model)
    llm = LLMConfig(args.llm_url, args.llm_model) if args.llm_url and args.llm_model else None
    hypotheses: dict[str, list[str]] = {s: [] for s in sources}
    stats = {s: {"seconds": 0.0, "chinese": 0, "empty": 0, "lines": 0, "used": {}} for s in sources}
    refs, records = [], []
    for row in progress(rows, desc="clips", unit="clip"):
        audio = load_audio(args.data / "clips" / row["path"])
        try:
            cues = transcribe(audio, model, TranscribeOptions(language="zh", english="none")).cues
        except UserError:  # no speech found: every source has nothing to translate
            cues = []
        refs.append(references[Path(row["path"]).stem])
        record = {"id": Path(row["path"]).stem, "sentence": row["sentence"], "reference": refs[-1]}
        for source in sources:
            copies = copy.deepcopy(cues)
            started = time.perf_counter()
            result = english_for(copies, source, audio=audio, model=model, language="zh", llm=llm)
            stat = stats[source]
            stat["seconds"] += time.perf_counter() - started
            stat["used"][result.source] = stat["used"].get(result.source, 0) + 1
            stat["lines"] += len(copies)
            stat["chinese"] += sum(has_cjk(c.english) for c in copies)
            stat["empty"] += sum(not c.english.strip() for c in copies)
            hypotheses[source].append(shown_text([c.english for c in copies]))
            record[source] = hypotheses[source][-1]
        records.append(record)
    print(f"clips: {len(rows)} ({args.split}); reference: hsk-sentences-audio English")
    # "as one document": the same lines scored as one text, the measure --joined gives a long file.
    print("| source | chrF | chrF as one document | cue lines | with Chinese | empty | seconds of translating "
          "| gave the English |")
    print("|---|---|---|---|---|---|---|---|")
    for source in sources:
        stat = stats[source]
        used = ", ".join(f"{k} {v}" for k, v in sorted(stat["used"].items()))
        document = chrf([" ".join(hypotheses[source])], [" ".join(refs)])
        print(f"| {source} | {chrf(hypotheses[source], refs):.1f} | {document:.1f} | {stat['lines']} | "
              f"{stat['chinese']} | {stat['empty']} | {stat['seconds']:.1f} | {used} |")
    if args.csv:
        write_rows(args.csv, records)
    return 0


def joined_file(args, rows: list[dict], references: dict[str, str], sources: list[str], model) -> int:
    import numpy as np

    from app.speech.audio import SAMPLE_RATE

    gap = np.zeros(int(0.6 * SAMPLE_RATE), dtype=np.float32)
    clips = [load_audio(args.data / "clips" / r["path"]) for r in rows]
    audio = np.concatenate([piece for clip in clips for piece in (clip, gap)])
    spans, at = [], 0.0
    for clip in clips:
        spans.append((at, at + clip.size / SAMPLE_RATE))
        at += (clip.size + gap.size) / SAMPLE_RATE
    references_by_clip = [references[Path(r["path"]).stem] for r in rows]
    reference = " ".join(references_by_clip)
    print(f"clips: {len(rows)} ({args.split}) joined: {audio.size / SAMPLE_RATE / 60:.1f} min; "
          "reference: hsk-sentences-audio English")
    print("| source | chrF by sentence | chrF as one document | cue lines | with Chinese | empty | whole job s "
          "| gave the English |")
    print("|---|---|---|---|---|---|---|---|")
    for source in sources:
        options = TranscribeOptions(language="zh", english=source, llm_url=args.llm_url, llm_model=args.llm_model)
        started = time.perf_counter()
        transcript = transcribe(audio, model, options)
        seconds = time.perf_counter() - started
        cues = transcript.cues
        hypothesis = shown_text([c.english for c in cues])
        hypotheses, unit_references = scoring_units(cues, spans, references_by_clip)
        by_sentence, as_document = chrf(hypotheses, unit_references), chrf([hypothesis], [reference])
        print(f"| {source} | {by_sentence:.1f} ({len(hypotheses)} units) | {as_document:.1f} | {len(cues)} | "
              f"{sum(has_cjk(c.english) for c in cues)} | {sum(not c.english.strip() for c in cues)} | "
              f"{seconds:.1f} | {transcript.english_source} ({transcript.decoder}) |")
        for warning in transcript.warnings:
            print(f"  warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
