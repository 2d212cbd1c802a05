"""Live captions measured without a person: a file of joined clips fed to the live transcriber as a
microphone would, then scored.

    python -m app.evaluation.live ../shared/data/zh-synth --clips 60            # ~2 minutes, real time
    python -m app.evaluation.live ../real-speech --set real                     # real voices, every clip
    python -m app.evaluation.live ../shared/data/zh-synth --set voices          # many synthesised voices
    python -m app.evaluation.live ../shared/data/zh-synth --clips 15 --no-realtime   # quick, audio time
    python -m app.evaluation.live ../real-speech --set real --cpu-clock          # real time on CPU time
    python -m app.evaluation.live ../real-speech --set real --no-realtime --phases 0,0.17,0.33   # 3 runs, means

The file is app.evaluation.continuous's file of the chosen `--set`: `zh-synth` (a seeded sample of
test clips, 0.12-0.3 s apart), `voices` (the same sentences narrated by the offered voices in
turn), cut at `--clips` clips or `--minutes`; or `real` (every clip of the real-speech set,
`python -m training.real_speech fetch ../real-speech`, 0.2-0.4 s apart). It is fed in 0.5-s chunks (`app.speech.live.replay`):
with real time (the default) a chunk arrives when it would have been spoken and decoding competes
with it for the CPU, as in the browser; with `--no-realtime` chunks follow as fast as decoding goes
and moments are audio time (what an infinitely fast machine would show); with `--cpu-clock` real
time is simulated on the CPU time the process spends (a moment is when the audio arrived plus the
CPU time decoding took since, what arrived meanwhile is fed together): real time as on a quiet
machine, measurable on a busy one, where wall time measures the other work too. `--phases` runs the
live pass once per phase, the file behind that many seconds of silence: the same speech met at other
chunk boundaries, so other buffers and decodings; one run's CER moves by points with the phase
alone, so a choice between policies is made on the means. Reported:

* **latency**: for each word of the committed text (jieba), from the end of its audio (its last
  character's end as the committing hypothesis timed it) to the moment it was committed; median and
  95th percentile; and the first commit after the first speech;
* **changed**: characters of committed text that a later moment no longer shows (each moment's
  committed text must be a prefix of every later one): must be 0;
* **CER** (normalised, app.language.text.cer) of the committed text against the reference and
  against the offline transcription (the app's usual path, `app.speech.transcribe`, English none),
  and the offline transcription's own CER against the reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from app.evaluation.continuous import SEED, SETS, build


def changed_chars(moments: list[str]) -> int:
    """Characters of each moment's committed text not kept as they were by the next moment."""
    changed = 0
    for before, after in zip(moments, moments[1:]):
        same = 0
        while same < min(len(before), len(after)) and before[same] == after[same]:
            same += 1
        changed += len(before) - same
    return changed


def word_latencies(char_commits) -> list[float]:
    """Per committed word (jieba over the committed characters): commit moment of its last
    character minus that character's end."""
    from app.language.text import split_words

    text = "".join(c.text for c, _ in char_commits)
    out, at = [], 0
    for word in split_words(text):
        at += len(word)
        char, moment = char_commits[at - 1]
        out.append(moment - char.end)
    return out


def run_live(audio: np.ndarray, model, realtime: bool, options, cpu_clock: bool = False) -> dict:
    from app.speech.live import LiveTranscriber, replay

    transcriber = LiveTranscriber(model, options)
    transcriber.warm()
    moments: list[str] = []
    started = time.perf_counter()
    for _ in replay(transcriber, audio, realtime, cpu_clock=time.process_time if cpu_clock else None):
        moments.append(transcriber.text)
    latencies = word_latencies(transcriber.stats.char_commits)
    first = transcriber.stats.char_commits[0] if transcriber.stats.char_commits else None
    return {"text": transcriber.text, "changed": changed_chars(moments), "words": len(latencies),
            "latency_median": float(np.median(latencies)) if latencies else None,
            "latency_p95": float(np.percentile(latencies, 95)) if latencies else None,
            "first_commit_at": first[1] if first else None, "first_speech_end": first[0].end if first else None,
            "decodings": transcriber.stats.decodings, "decode_seconds": transcriber.stats.decode_seconds,
            "wall_seconds": time.perf_counter() - started, "step": options.step, "beam_size": options.beam_size,
            "whole_words": options.whole_words}


def run_offline(audio: np.ndarray, model) -> tuple[str, float]:
    from app.speech.transcribe import TranscribeOptions, transcribe

    started = time.perf_counter()
    transcript = transcribe(audio, model, TranscribeOptions(language="zh", english="none"))
    return transcript.text, time.perf_counter() - started


def evaluate(kind: str, data: Path, out: Path, clips: int | None, minutes: float, seed: int, realtime: bool,
             options=None, cpu_clock: bool = False, phases: tuple[float, ...] = (0.0,)) -> dict:
    """The live pass once per phase (seconds of silence before the file: the same speech met by
    other chunk boundaries and so other decodings), the offline pass once; the figures are the first
    phase's, with every phase's under "runs"."""
    from app.language.text import cer
    from app.speech.audio import SAMPLE_RATE, load_audio
    from app.speech.model import load_model

    folder = out / (f"real-seed{seed}" if kind == "real" else f"{kind}-{clips or 'all'}clips-{minutes:g}min-seed{seed}")
    wav, reference = build(kind, data, folder, minutes, seed, clips)
    audio = load_audio(wav)
    model = load_model()
    from app.speech.live import LiveOptions

    options = options or LiveOptions()
    runs = [run_live(np.concatenate([np.zeros(int(round(phase * SAMPLE_RATE)), dtype=audio.dtype), audio]),
                     model, realtime, options, cpu_clock) for phase in phases]
    live = dict(runs[0])
    offline, offline_seconds = run_offline(audio, model)
    truth = "".join(reference.texts)
    live["runs"] = [{"phase": phase, "cer_live": cer([truth], [run["text"]]), "latency_median": run["latency_median"],
                     "latency_p95": run["latency_p95"], "changed": run["changed"], "words": run["words"]}
                    for phase, run in zip(phases, runs)]
    live.update(set=kind, clips=len(reference.texts), seconds=audio.size / SAMPLE_RATE, realtime=realtime,
                cpu_clock=cpu_clock,
                cer_live=live["runs"][0]["cer_live"], cer_live_vs_offline=cer([offline], [live["text"]]),
                cer_offline=cer([truth], [offline]), offline_seconds=offline_seconds, offline_text=offline,
                wav=str(wav))
    return live


def report(r: dict) -> str:
    mode = ("real time" if r["realtime"] else "real time simulated on CPU time" if r.get("cpu_clock")
            else "audio time (as fast as decoding goes)")
    return (f"live captions, {r['clips']} {r['set']} clips ({r['seconds'] / 60:.1f} min), {mode}, decoding every "
            f"{r['step']:g} s of new audio, beam {r['beam_size']}, commits by {'word' if r['whole_words'] else 'character'}: {r['words']} words committed; latency from the end of a word to its "
            f"commit: median {r['latency_median']:.2f} s, p95 {r['latency_p95']:.2f} s; first commit at "
            f"{r['first_commit_at']:.2f} s (its speech ended at {r['first_speech_end']:.2f} s); committed text "
            f"changed: {r['changed']} characters; CER live {r['cer_live']:.2%}, offline {r['cer_offline']:.2%}, "
            f"live against offline {r['cer_live_vs_offline']:.2%}; {r['decodings']} decodings, "
            f"{r['decode_seconds']:.1f} s decoding for {r['seconds']:.1f} s of audio; offline path "
            f"{r['offline_seconds']:.1f} s" + phases_report(r.get("runs", [])))


def phases_report(runs: list[dict]) -> str:
    """Every phase's figures and their means (one run's CER moves by points with the phase alone)."""
    if len(runs) < 2:
        return ""
    lines = [f"\n  phase {run['phase']:g} s: CER live {run['cer_live']:.2%}, latency median {run['latency_median']:.2f} s, "
             f"p95 {run['latency_p95']:.2f} s, changed {run['changed']}, {run['words']} words" for run in runs]
    mean = {key: float(np.mean([run[key] for run in runs])) for key in ("cer_live", "latency_median", "latency_p95")}
    return "".join(lines) + (f"\n  mean of {len(runs)} phases: CER live {mean['cer_live']:.2%}, latency median "
                             f"{mean['latency_median']:.2f} s, p95 {mean['latency_p95']:.2f} s; changed at most "
                             f"{max(run['changed'] for run in runs)}")


def live_options(args):
    from app.speech.live import LiveOptions

    options = LiveOptions(whole_words=not args.by_chars)
    if args.step:
        options.step = args.step
    if args.beam_size:
        options.beam_size = args.beam_size
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluation.live", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="zh-synth (Common Voice layout), or the real-speech folder with --set real")
    parser.add_argument("--set", dest="kind", choices=sorted(SETS), default="zh-synth",
                        help="which joined file (default zh-synth; real: every real-speech clip; voices: narrated)")
    parser.add_argument("--clips", type=int, default=None, help="clips joined (default: up to --minutes)")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the file at most (default 2)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-realtime", dest="realtime", action="store_false",
                        help="feed as fast as decoding goes; moments in audio time")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="real time simulated on the CPU time spent (for a busy machine); implies --no-realtime")
    parser.add_argument("--step", type=float, default=None, help="seconds of new audio between decodings")
    parser.add_argument("--beam-size", type=int, default=None, help="the live decoding's beam (default: LiveOptions')")
    parser.add_argument("--by-chars", action="store_true", help="commit agreed characters, not only whole words")
    parser.add_argument("--out", type=Path, default=None, help="where the joined file goes (default: temporary)")
    parser.add_argument("--phases", type=lambda v: tuple(float(x) for x in v.split(",")), default=(0.0,),
                        help="seconds of silence before the file, comma-separated: one live run each, and their "
                             "means (default 0: one run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    from app.base.errors import UserError

    try:
        with tempfile.TemporaryDirectory(prefix="zimu-live-") as tmp:
            result = evaluate(args.kind, args.data, args.out or Path(tmp), args.clips, args.minutes, args.seed,
                              args.realtime and not args.cpu_clock, live_options(args), args.cpu_clock, args.phases)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(result))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
