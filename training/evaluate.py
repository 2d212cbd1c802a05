"""Score any Whisper model on any split: normalised CER, jieba WER, real-time factor, per-utterance CSV.
The project's one evaluation command.

    python -m training.evaluate --model M --data D [--split test] [--plain] [--csv out.csv] [--json out.json]

--model  `embedded`, a CTranslate2 folder (e.g. an export of training.export) or a transformers
         folder / Hub id (e.g. a training run's --out, a checkpoint-N folder, openai/whisper-small).
--data   a Common Voice layout folder (clips/ + SPLIT.tsv) or a featurize folder (manifest.json,
         shards stored with --store audio).

CTranslate2 models are decoded exactly like the app decodes (app.speech.transcribe.transcribe: faster-whisper,
beam 5, VAD, hallucination guards, Simplified output), so the number is the one a user of the app
would see. transformers models are decoded with `generate` (beam --beam-size, language zh, one
30-s window per clip, no VAD); export them to CTranslate2 for the app's number. CER is
app.language.text.cer after app.language.text.normalize_for_cer (Simplified, punctuation removed, width unified);
WER is over jieba words of the same normalised text (training.metrics). RTF = decoding seconds /
audio seconds (audio loading excluded) on this machine. Character errors are also split by kind
(homophone, tone, other syllable, insertion, deletion): see `error_kinds`. `--plain` also decodes
each clip with plain faster-whisper (beam 5, VAD, nothing else) and scores it beside: what the app's
pipeline adds. Needs only the app's dependencies for CTranslate2 models (transformers for the rest).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.base.errors import UserError, first_line

from app.speech.audio import SAMPLE_RATE


@dataclass
class Utterance:
    key: str
    reference: str
    audio: np.ndarray


def read_utterances(data: Path, split: str, limit: int = 0) -> list[Utterance]:
    """A CV-layout split (clips decoded by app.speech.audio) or a featurize split (stored audio decoded)."""
    if (data / "manifest.json").is_file():
        import datasets

        from featurize import audio_codec
        from featurize.reader import split_files

        try:
            files = split_files(data, split)
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from None
        rows = datasets.load_dataset("parquet", data_files={split: files}, split=split).with_format(None)
        if "audio" not in rows.column_names:
            raise UserError(f"{data} stores log-mel only (--store logmel): evaluation decodes audio, "
                            "featurize with --store audio for it")
        rows = rows.select(range(min(limit, len(rows)))) if limit else rows
        return [Utterance(row["id"], row["text"], audio_codec.decode(row["audio"]["bytes"])) for row in rows]
    from app.speech.audio import load_audio
    from app.base.corpus import read_split

    rows = read_split(data, split)
    rows = rows[:limit] if limit else rows
    return [Utterance(row["path"], row["sentence"], load_audio(data / "clips" / row["path"])) for row in rows]


ERROR_KINDS = ("homophone", "tone", "other_syllable", "insertion", "deletion")


def _reading(char: str) -> tuple[str, int] | None:
    from app.language.pinyin import syllables

    found = syllables(char)
    return (found[0].initial + found[0].final, found[0].tone) if found else None


def error_kinds(reference: str, hypothesis: str) -> dict[str, int]:
    """Character errors by kind, for a learner's view of what goes wrong: a substituted character
    with the same syllable and tone (homophone: only context can tell), the same syllable in another
    tone, or another syllable; insertions; deletions. Readings are each character's citation reading
    (app.language.pinyin). The kinds add up to app.language.text.char_errors."""
    import jiwer

    from app.language.text import normalize_for_cer

    counts = dict.fromkeys(ERROR_KINDS, 0)
    ref, hyp = normalize_for_cer(reference), normalize_for_cer(hypothesis)
    if not ref:
        counts["insertion"] = len(hyp)
        return counts
    for chunk in jiwer.process_characters(ref, hyp).alignments[0]:
        if chunk.type == "insert":
            counts["insertion"] += chunk.hyp_end_idx - chunk.hyp_start_idx
        elif chunk.type == "delete":
            counts["deletion"] += chunk.ref_end_idx - chunk.ref_start_idx
        elif chunk.type == "substitute":
            for said, heard in zip(ref[chunk.ref_start_idx: chunk.ref_end_idx],
                                   hyp[chunk.hyp_start_idx: chunk.hyp_end_idx], strict=True):
                a, b = _reading(said), _reading(heard)
                kind = "other_syllable" if a is None or b is None or a[0] != b[0] else (
                    "homophone" if a[1] == b[1] else "tone")
                counts[kind] += 1
    return counts


def is_ctranslate2(model: str) -> bool:
    from app.speech.model import is_ct2_folder, is_embedded

    return is_embedded(model) or is_ct2_folder(Path(model).expanduser())


class CTranslate2Decoder:
    """The app's own decoding path.

    Whisper falls back to sampling (temperature > 0) on windows that look like a loop; CTranslate2's
    random seed is set before every clip, so a clip's hypothesis does not depend on the clips decoded
    before it and a rerun of the same command gives the same figures."""

    def __init__(self, model: str, beam_size: int, compute_type: str | None, seed: int):
        from app.speech.model import load_model
        from app.speech.transcribe import TranscribeOptions

        self.model = load_model(model, None, compute_type)
        self.options = TranscribeOptions(language="zh", english="none", beam_size=beam_size)
        self.seed = seed

    def __call__(self, audio: list[np.ndarray]) -> list[str]:
        import ctranslate2

        from app.speech.transcribe import transcribe

        texts = []
        for clip in audio:
            ctranslate2.set_random_seed(self.seed)
            try:
                texts.append(transcribe(clip, self.model, self.options).text)
            except UserError:  # "no speech found": an empty hypothesis, scored as deletions
                texts.append("")
        return texts


class PlainDecoder:
    """Plain faster-whisper on the app decoder's model (its own VAD and decoding, none of the app's
    guards or normalisation): the baseline the app's pipeline is measured against."""

    def __init__(self, app_decoder: CTranslate2Decoder):
        self.model, self.beam_size, self.seed = app_decoder.model, app_decoder.options.beam_size, app_decoder.seed

    def __call__(self, audio: list[np.ndarray]) -> list[str]:
        import ctranslate2

        texts = []
        for clip in audio:
            ctranslate2.set_random_seed(self.seed)
            segments, _ = self.model.transcribe(clip, language="zh", beam_size=self.beam_size, vad_filter=True)
            texts.append("".join(s.text for s in segments))
        return texts


class TransformersDecoder:
    """WhisperForConditionalGeneration.generate on one padded 30-s window per clip."""

    def __init__(self, model: str, beam_size: int):
        import torch

        from training.model import load_base

        self.torch = torch
        self.model, self.processor = load_base(model)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self.beam_size = beam_size

    def __call__(self, audio: list[np.ndarray]) -> list[str]:
        from app.language.text import to_simplified

        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with self.torch.inference_mode():
            ids = self.model.generate(features.input_features.to(self.device), language="zh", task="transcribe",
                                      num_beams=self.beam_size, max_new_tokens=200)
        return [to_simplified(t) for t in self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="embedded",
                        help="embedded, a CTranslate2 folder, a transformers folder or a Hub id")
    parser.add_argument("--data", type=Path, required=True, help="Common Voice layout folder or featurize folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=0, help="first N clips only (0 = all)")
    parser.add_argument("--beam-size", "--beam_size", type=int, default=5)
    parser.add_argument("--batch-size", "--batch_size", type=int, default=8,
                        help="clips per generate call (transformers)")
    parser.add_argument("--compute-type", "--compute_type", default=None,
                        help="CTranslate2 compute type (default: the app's)")
    parser.add_argument("--seed", type=int, default=1234,
                        help="CTranslate2's random seed, set before every clip (Whisper's temperature fallback samples)")
    parser.add_argument("--plain", action="store_true",
                        help="also score plain faster-whisper on the same model beside the app's pipeline "
                             "(CTranslate2 models)")
    parser.add_argument("--csv", type=Path, default=None, help="per-utterance results")
    parser.add_argument("--json", type=Path, default=None, help="the summary as JSON")
    return parser


def decode_all(decoder, utterances: list[Utterance], step: int, desc: str) -> tuple[list[str], float]:
    """(hypotheses, decoding seconds) of every utterance, `step` clips per decoder call."""
    from app.base.progress import progress

    hypotheses: list[str] = []
    seconds = 0.0
    for first in progress(range(0, len(utterances), step), desc=desc, unit="batch" if step > 1 else "clip"):
        batch = utterances[first: first + step]
        started = time.perf_counter()
        hypotheses += decoder([u.audio for u in batch])
        seconds += time.perf_counter() - started
    return hypotheses, seconds


def summarise(args, decoder_name: str, utterances: list[Utterance], hypotheses: list[str], seconds: float,
              kinds: list[dict[str, int]]) -> dict:
    from app.language.text import traditional_only_chars
    from training.metrics import score

    audio_seconds = sum(u.audio.size for u in utterances) / SAMPLE_RATE
    references = [u.reference for u in utterances]
    return {"model": args.model, "decoder": decoder_name, "data": str(args.data), "split": args.split,
            "clips": len(utterances), "audio_minutes": round(audio_seconds / 60, 2),
            **{k: round(v, 4) for k, v in score(references, hypotheses).items()},
            "rtf": round(seconds / audio_seconds, 4),
            "traditional_only_chars": sum(len(traditional_only_chars(h)) for h in hypotheses),
            "errors": {k: sum(c[k] for c in kinds) for k in ERROR_KINDS}}


def report(summary: dict) -> None:
    print(f"{summary['model']} on {summary['split']} ({summary['clips']} clips, {summary['audio_minutes']} min, "
          f"{summary['decoder']}): CER {summary['cer']:.2%}  WER(jieba) {summary['wer']:.2%}  "
          f"RTF {summary['rtf']:.3f}  Traditional-only chars {summary['traditional_only_chars']}")
    print("character errors: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["errors"].items()))


def write_csv(path: Path, utterances: list[Utterance], hypotheses: list[str], kinds: list[dict],
              plain: list[str] | None) -> None:
    from app.base.corpus import write_rows
    from app.language.text import char_errors, normalize_for_cer

    rows = []
    for i, (u, h, k) in enumerate(zip(utterances, hypotheses, kinds, strict=True)):
        row = {"clip": u.key, "reference": u.reference, "hypothesis": h, "char_errors": char_errors(u.reference, h),
               "ref_chars": len(normalize_for_cer(u.reference)), **{name: k[name] for name in ERROR_KINDS}}
        if plain is not None:
            row["plain_hypothesis"] = plain[i]
        rows.append(row)
    write_rows(path, rows)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not args.data.is_dir():
            raise UserError(f"{args.data} is not a folder")
        utterances = read_utterances(args.data, args.split, args.limit)
        if not utterances:
            raise UserError(f"{args.data} has no clips in split {args.split!r}")
        ct2 = is_ctranslate2(args.model)
        if args.plain and not ct2:
            raise UserError("--plain compares with plain faster-whisper: it needs a CTranslate2 model")
        decoder = (CTranslate2Decoder(args.model, args.beam_size, args.compute_type, args.seed) if ct2
                   else TransformersDecoder(args.model, args.beam_size))
    except (UserError, OSError, ValueError) as exc:
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return 1

    hypotheses, seconds = decode_all(decoder, utterances, 1 if ct2 else args.batch_size, args.split)
    kinds = [error_kinds(u.reference, h) for u, h in zip(utterances, hypotheses, strict=True)]
    summary = summarise(args, "faster-whisper (app)" if ct2 else "transformers generate", utterances,
                        hypotheses, seconds, kinds)
    if ct2:
        summary["seed"] = args.seed
    report(summary)
    plain = None
    if args.plain:
        plain, plain_seconds = decode_all(PlainDecoder(decoder), utterances, 1, f"{args.split} (plain)")
        plain_kinds = [error_kinds(u.reference, h) for u, h in zip(utterances, plain, strict=True)]
        summary["plain"] = summarise(args, "plain faster-whisper", utterances, plain, plain_seconds, plain_kinds)
        report(summary["plain"])
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.csv:
        write_csv(args.csv, utterances, hypotheses, kinds, plain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
