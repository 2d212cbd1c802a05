"""Command line: dataclass arguments parsed by transformers' HfArgumentParser, as in Hugging Face's
run_speech_recognition_seq2seq.py. Options are written with dashes like the app's (--num-proc); the
underscore spelling of Hugging Face's scripts (--num_proc) answers too.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.base.errors import UserError
from featurize.sources import DEFAULT_MAX_FILE_MB

EPILOG = """\
source syntax (repeat --source to mix; see featurize/README.md):
  cv:DIR[:SPLITS]               Common Voice release folder (clips/ + train.tsv dev.tsv test.tsv);
                                SPLITS: train, dev, test or joined with '+' (default train+dev+test)
  hf:DATASET[:CONFIG][:SPLITS]  Hugging Face dataset, e.g. hf:mozilla-foundation/common_voice_11_0:zh-CN:train
  manifest:FILE[:SPLIT]         .tsv/.csv with columns path + sentence (default split train)
  ...@WEIGHT                    use each clip WEIGHT times (0.5: a seeded half, 2: twice)
cv/manifest rows with extra or missing fields, paths outside the dataset folder (unless
--allow-outside-paths) and files that are not regular or over --max-file-mb are refused:
counted and named per reason in the summary and manifest.json, never read.

examples:
  python -m featurize --source cv:../shared/data/zh-synth --out out/zh-synth
  python -m featurize --source cv:../shared/data/zh-synth:train@1.0 --source manifest:list.tsv@0.5 \\
      --out out/mix --num-proc 2 --speed-perturb 0.9,1.0,1.1 --noise-snr-db 10:30
  sbatch --array=0-15 --wrap 'python -m featurize --source ... --out /shared/out \\
      --num-shards 16 --shard-index $SLURM_ARRAY_TASK_ID'
A killed run resumes when rerun with the same command: finished shards are kept.
"""


@dataclass
class DataArguments:
    # "append" on top of HfArgumentParser's nargs="+": `--source a --source b` keeps both (as [[a], [b]]).
    source: list[str] = field(metadata={"action": "append", "help": "Where clips come from: "
                                        "KIND:LOCATION[:SPLITS][@WEIGHT], repeatable (see below)."})
    audio_column_name: str | None = field(default=None, metadata={
        "help": "Column holding the audio (default: 'path' for cv/manifest, 'audio' for hf)."})
    text_column_name: str | None = field(default=None, metadata={
        "help": "Column holding the sentence (default: 'sentence')."})
    streaming: bool = field(default=False, metadata={
        "help": "Stream hf sources instead of downloading them first (one output shard per input file)."})
    max_duration_in_seconds: float = field(default=30.0, metadata={
        "help": "Drop clips longer than this after augmentation (Whisper sees 30 s)."})
    allow_outside_paths: bool = field(default=False, metadata={
        "help": "Read cv/manifest paths outside the dataset folder (absolute or ../); refused by default, "
                "so a table cannot pull other files of the machine into the shards (or onto the Hub)."})
    max_file_mb: float = field(default=DEFAULT_MAX_FILE_MB, metadata={
        "help": "Refuse audio files larger than this many MB (and anything that is not a regular file, "
                "e.g. /dev/zero) before reading them."})

    def __post_init__(self):
        if not self.max_file_mb > 0:
            raise UserError("--max-file-mb must be > 0")


@dataclass
class ModelArguments:
    model: str | None = field(default=None, metadata={
        "help": "Whisper model whose tokenizer and feature extractor to use: a CTranslate2 or HF folder, or a Hub id "
                "(online only). Default, or 'embedded': the app's embedded Whisper base."})
    language: str = field(default="zh", metadata={"help": "Language token of the labels."})
    task: str = field(default="transcribe", metadata={"help": "Task token of the labels (transcribe/translate)."})
    timestamps: bool = field(default=False, metadata={
        "help": "Keep timestamp tokens: labels <|0.00|> text <|end|> without <|notimestamps|>."})


@dataclass
class OutputArguments:
    out: str = field(metadata={"help": "Output folder: data/*.parquet shards, manifest.json, README.md."})
    store: Literal["audio", "logmel"] = field(default="audio", metadata={
        "help": "audio: compressed 16 kHz audio, log-mel computed at training time (smallest); "
                "logmel: float16 log-mel without the 30 s padding (no decoding at training time)."})
    audio_codec: Literal["opus", "original", "flac"] = field(default="opus", metadata={
        "help": "With --store audio: opus (Ogg Opus at --opus-bitrate), original (the source file's bytes; "
                "augmented copies fall back to opus), flac (lossless, ~5x larger)."})
    opus_bitrate: int = field(default=16000, metadata={
        "help": "Opus bitrate in bit/s (16 kb/s kept Whisper's CER; see featurize/README.md)."})
    clips_per_shard: int = field(default=1000, metadata={"help": "Source clips per output shard (the resume unit)."})
    overwrite: bool = field(default=False, metadata={
        "help": "Delete shards in --out that were made with other sources/options instead of refusing."})
    push_to_hub: str | None = field(default=None, metadata={
        "help": "Upload the finished folder to this Hugging Face dataset repo (checked before any work)."})
    hub_private: bool = field(default=False, metadata={"help": "Create the --push-to-hub repo private."})

    def __post_init__(self):
        if self.clips_per_shard < 1 or self.opus_bitrate < 6000:
            raise UserError("--clips-per-shard must be >= 1 and --opus-bitrate >= 6000")


@dataclass
class AugmentArguments:
    speed_perturb: str | None = field(default=None, metadata={
        "help": "Comma-separated speed factors drawn per clip, e.g. 0.9,1.0,1.1."})
    noise_snr_db: str | None = field(default=None, metadata={
        "help": "Add noise at this SNR in dB, or drawn from LOW:HIGH, e.g. 10:30."})
    noise_prob: float = field(default=1.0, metadata={"help": "Share of clips that get noise."})
    noise_dir: str | None = field(default=None, metadata={
        "help": "Folder of noise recordings (e.g. MUSAN) to mix in; default white noise."})
    augment_splits: str = field(default="train", metadata={"help": "Comma-separated splits that get augmentation."})
    seed: int = field(default=0, metadata={"help": "Seed for @WEIGHT sampling and augmentation."})

    def __post_init__(self):
        if any(not 0.5 <= s <= 2.0 for s in self.speeds()):
            raise UserError("--speed-perturb: factors must lie between 0.5 and 2")
        self.snr_range()
        if not 0 <= self.noise_prob <= 1:
            raise UserError("--noise-prob must lie between 0 and 1")

    def speeds(self) -> tuple[float, ...]:
        return _floats(self.speed_perturb, "--speed-perturb") if self.speed_perturb else ()

    def snr_range(self) -> tuple[float, float] | None:
        """(low, high) SNR in dB, or None without --noise-snr-db."""
        if not self.noise_snr_db:
            return None
        values = _floats(self.noise_snr_db, "--noise-snr-db")
        if len(values) not in (1, 2):
            raise UserError("--noise-snr-db: one value or LOW:HIGH")
        return min(values), max(values)


@dataclass
class RunArguments:
    num_proc: int = field(default=1, metadata={"help": "Worker processes on this machine."})
    num_shards: int = field(default=1, metadata={
        "help": "Split the shard list between this many independent jobs (Slurm array, k8s indexed job, Ray)."})
    shard_index: int = field(default=0, metadata={"help": "Which of --num-shards this job is (0-based)."})
    quiet: bool = field(default=False, metadata={"help": "No progress bars."})

    def __post_init__(self):
        if not 1 <= self.num_proc <= 256:
            raise UserError("--num-proc must be between 1 and 256")
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise UserError("--shard-index must satisfy 0 <= shard_index < num_shards")


def dashes_first(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """List each option's dashed spelling first (--num-proc, then --num_proc) in --help and errors:
    one style with the app's CLI. HfArgumentParser adds the dashed one as the alias."""
    for action in parser._actions:
        action.option_strings.sort(key=lambda option: "_" in option)
    return parser


def parser():
    from transformers import HfArgumentParser

    return dashes_first(HfArgumentParser(
        (DataArguments, ModelArguments, OutputArguments, AugmentArguments, RunArguments),
        prog="python -m featurize",
        description="Mandarin speech corpora -> compact, resumable Whisper training shards (Parquet), on CPU.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ))


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.replace(":", ",").split(",") if x.strip())
    except ValueError:
        raise UserError(f"{option} {text}: expected numbers") from None


def settings_from(data: DataArguments, model: ModelArguments, output: OutputArguments, aug: AugmentArguments, specs):
    from featurize.augment import AugmentOptions, noise_files
    from featurize.labels import tokenizer_fingerprint
    from featurize.pipeline import Settings

    if aug.noise_dir and not noise_files(str(Path(aug.noise_dir).resolve())):
        raise UserError(f"--noise-dir {aug.noise_dir}: no audio files found")
    return Settings(
        store=output.store,
        audio_codec=output.audio_codec,
        opus_bitrate=output.opus_bitrate,
        model=model.model,
        tokenizer=tokenizer_fingerprint(model.model),
        language=model.language,
        task=model.task,
        timestamps=model.timestamps,
        max_duration=data.max_duration_in_seconds,
        augment=AugmentOptions(speeds=aug.speeds(), snr_db=aug.snr_range(), noise_prob=aug.noise_prob,
                               noise_dir=str(Path(aug.noise_dir).resolve()) if aug.noise_dir else None),
        augment_splits=tuple(s.strip() for s in aug.augment_splits.split(",") if s.strip()),
        seed=aug.seed,
        clips_per_shard=output.clips_per_shard,
        streaming=data.streaming,
        sources=tuple(spec.describe() for spec in specs),
        allow_outside_paths=data.allow_outside_paths,
        max_file_bytes=int(data.max_file_mb * 1e6),
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parser()
    try:  # the dataclasses refuse impossible option values (UserError) as they are built
        *parsed, unknown = arguments.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if unknown:
        arguments.error(f"unrecognized arguments: {' '.join(unknown)}")  # argparse's usage + exit 2
    data, model, output, aug, run_args = parsed
    # Our own INFO (resuming ...) and WARNING (skipped clips); libraries only from WARNING on.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("featurize").setLevel(logging.INFO)
    for noisy in ("httpx", "huggingface_hub", "datasets", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return _main(data, model, output, aug, run_args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130


def _push(repo: str, folder: Path) -> None:
    from featurize import hub

    print(f"pushed to https://huggingface.co/datasets/{repo}: {hub.push(folder, repo)}")


def _main(data, model, output, aug, run_args) -> int:
    from featurize import hub, manifest, run
    from featurize.sources import parse_source

    specs = [parse_source(s) for group in data.source for s in (group if isinstance(group, list) else [group])]
    settings = settings_from(data, model, output, aug, specs)
    out = Path(output.out).expanduser().resolve()
    push = None
    if output.push_to_hub:
        hub.check_repo(output.push_to_hub, output.hub_private)  # before any work: offline or no token fails now
        push = functools.partial(_push, output.push_to_hub)
    options = run.RunOptions(out=out, num_proc=run_args.num_proc, num_shards=run_args.num_shards,
                             shard_index=run_args.shard_index, overwrite=output.overwrite,
                             progress=not run_args.quiet)
    result = run.run(specs, settings, options, data.audio_column_name, data.text_column_name, push)
    print(manifest.format_summary(result))
    return 0
