"""The Microphone tab's Live mode: captions while the learner speaks, then the normal result.

Gradio's streaming microphone (`gr.Audio(streaming=True)`) sends a chunk every half second; each goes
to the session's `app.speech.live.LiveTranscriber`. The page shows the committed text as tone-coloured
hanzi with pinyin (the result panel's renderer, app.study.player.words_html), the tentative tail
greyed, and under each finished sentence its English (Google when reachable and asked for, else
CC-CEDICT glosses: a live sentence cannot wait for Whisper's translate pass). Stop writes the whole
recording and hands it to the usual path (`make_run`'s run: cues, player, downloads, Anki).

Nothing said is lost when the tab closes: the session's audio (raw 16 kHz int16) and committed text
are written to its result folder as they come, the folder's name is kept in the browser
(gr.BrowserState), and the reopened page shows the kept text with a button that transcribes the kept
recording. Live sessions at once are bounded (app.base.limits.LiveSlots): one more is refused with a
line saying so.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gradio as gr
import numpy as np

from app.base import limits
from app.base.errors import UserError
from app.language.gloss import cedict_gloss
from app.language.subtitles import Cue, Word, cue_tokens
from app.language.text import split_words
from app.language.translate import google_reachable, google_translate
from app.speech.audio import SAMPLE_RATE, StreamResampler, to_int16, write_audio
from app.speech.live import LiveOptions, LiveTranscriber
from app.study.player import words_html

RECORDING, COMMITTED = "live.pcm", "live.json"
SENTENCE = re.compile(r"[^。？！?!]+[。？！?!]*")
LIVE_MINUTES = 30  # one stream's time limit (Gradio's time_limit), minutes
SLOTS = limits.LiveSlots()


@dataclass
class LiveSession:
    transcriber: LiveTranscriber
    folder: Path
    english: str  # "google" or "cedict" (or "none")
    resampler: StreamResampler = field(default_factory=StreamResampler)
    sentences: dict[str, str] = field(default_factory=dict)  # finished sentence → its HTML
    lock: threading.Lock = field(default_factory=threading.Lock)


SESSIONS: dict[str, LiveSession] = {}
CREATING = threading.Lock()


@dataclass
class LiveParts:
    mode: gr.Radio
    group: gr.Group
    audio: gr.Audio
    status: gr.Markdown
    view: gr.HTML
    kept: gr.Button
    browser: gr.BrowserState
    recorded: gr.State


def build_live() -> LiveParts:
    """The mode switch and the Live group (inside the Microphone tab)."""
    mode = gr.Radio([("Record, then transcribe", "record"), ("Live captions while you speak", "live")],
                    value="record", label="Mode", elem_id="mic-mode")
    with gr.Group(visible=False, elem_id="live-group") as group:
        audio = gr.Audio(sources=["microphone"], streaming=True, type="numpy", elem_id="live-mic",
                         label="Speak Mandarin: captions appear as you speak; Stop gives the full result below")
        status = gr.Markdown(f"Live captions: at most {limits.LIVE_SESSIONS} live session"
                             f"{'' if limits.LIVE_SESSIONS == 1 else 's'} at once on this server.",
                             elem_id="live-status")
        view = gr.HTML(elem_id="live-captions", js_on_load=None)
        kept = gr.Button("Transcribe the kept recording", visible=False, elem_id="live-kept")
    return LiveParts(mode, group, audio, status, view, kept, gr.BrowserState("", storage_key="zimu-live"),
                     gr.State(None))


def _block(sentence: str, english: str, tentative: str = "") -> str:
    cue = Cue(0.0, 0.0, [Word(w, 0.0, 0.0) for w in split_words(sentence)]) if sentence else None
    hanzi = words_html(cue_tokens(cue)) if cue else ""
    if tentative:
        grey = Cue(0.0, 0.0, [Word(w, 0.0, 0.0) for w in split_words(tentative)])
        hanzi += f'<span class="zimu-tentative">{words_html(cue_tokens(grey))}</span>'
    line = f'<span class="english">{_escape(english)}</span>' if english else ""
    return f'<span class="cue">{hanzi}{line}</span>'


def _escape(text: str) -> str:
    import html

    return html.escape(text).replace("\n", " · ")


def sentence_english(sentence: str, source: str) -> str:
    """A finished sentence's English: Google's when that is the source, else CC-CEDICT glosses."""
    words = split_words(sentence)
    if source == "google":
        cue = Cue(0.0, 0.0, [Word(w, 0.0, 0.0) for w in words])
        if google_translate([cue], "zh") is None and cue.english:
            return cue.english
    return "" if source == "none" else cedict_gloss(words)


def live_html(text: str, tentative: str, source: str, cache: dict[str, str]) -> str:
    """Finished sentences (with English), then the open sentence and the greyed tentative tail."""
    sentences = SENTENCE.findall(text)
    open_part = ""
    if sentences and sentences[-1][-1] not in "。？！?!":
        open_part = sentences.pop()
    blocks = []
    for sentence in sentences:
        if sentence not in cache:
            cache[sentence] = _block(sentence, sentence_english(sentence, source))
        blocks.append(cache[sentence])
    if open_part or tentative:
        blocks.append(_block(open_part, "", tentative))
    if not blocks:
        blocks.append('<span class="cue zimu-waiting">Listening…</span>')
    return f'<div class="zimu-transcript zimu-live" lang="zh-Hans">{"".join(blocks)}</div>'


def _persist(session: LiveSession) -> None:
    t = session.transcriber
    data = {"text": t.text, "pieces": [p.__dict__ for p in t.pieces]}
    (session.folder / COMMITTED).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def recording_of(folder: Path) -> Path | None:
    """The kept recording as a WAV the usual path reads (written once from the raw samples)."""
    wav, pcm = folder / "recording.wav", folder / RECORDING
    if not wav.is_file() and pcm.is_file() and pcm.stat().st_size > SAMPLE_RATE // 5:
        write_audio(np.fromfile(pcm, dtype="<i2"), wav)
    return wav if wav.is_file() else None


def warm_live(model) -> None:
    """At start-up: what the first live session would otherwise wait seconds for."""
    LiveTranscriber(model).warm()


def make_handlers(settings, new_folder: Callable[[], Path], load: Callable):
    """start, chunk, stop and unload, bound to the server's settings."""

    def start(model_choice: str | None, request: gr.Request):
        """Recording began: take a live place, or say why not (the chunks are then ignored)."""
        refusal = SLOTS.acquire(request.session_hash)
        if refusal:
            gr.Warning(refusal)
            return f"⚠️ {refusal}", ""
        try:  # the first session of this server loads VAD, jieba and the decoder's first pass here
            LiveTranscriber(load(model_choice or settings.model_name, settings.device, settings.compute_type)).warm()
        except UserError as exc:
            SLOTS.release(request.session_hash)
            return f"⚠️ {exc}", ""
        return ("Listening… committed text is in colour, text still being decided is grey.",
                live_html("", "", "none", {}))

    def open_session(language: str, english: str, model_choice: str | None) -> LiveSession:
        model = load(model_choice or settings.model_name, settings.device, settings.compute_type)
        source = "google" if english in ("auto", "google") and google_reachable() else \
            ("none" if english == "none" else "cedict")
        session = LiveSession(LiveTranscriber(model, LiveOptions(language=None if language == "auto" else language)),
                              new_folder(), source)
        session.transcriber.warm()
        _persist(session)
        return session

    def chunk(audio, language: str, english: str, model_choice: str | None, request: gr.Request):
        """One chunk (every half second): the first opens the session (its folder and model), each
        is kept on disk and fed to the transcriber; the captions come back."""
        key = request.session_hash
        if audio is None or not SLOTS.touch(key):
            return gr.skip(), gr.skip()
        with CREATING:
            session = SESSIONS.get(key)
            if session is None:
                try:
                    session = SESSIONS[key] = open_session(language, english, model_choice)
                except UserError as exc:
                    SLOTS.release(key)
                    return gr.skip(), f"⚠️ {exc}"
        rate, samples = audio
        with session.lock:
            pcm = session.resampler(rate, samples)
            with open(session.folder / RECORDING, "ab") as f:
                f.write(to_int16(pcm).astype("<i2").tobytes())
            if session.transcriber.feed(pcm):
                _persist(session)
            t = session.transcriber
            return live_html(t.text, t.tentative, session.english, session.sentences), session.folder.name

    def close(key: str) -> LiveSession | None:
        session = SESSIONS.pop(key, None)
        SLOTS.release(key)
        if session is not None:
            with session.lock:
                session.transcriber.finish()
                _persist(session)
        return session

    def stop(request: gr.Request):
        session = close(request.session_hash)
        if session is None:
            raise gr.Error("No live session is running: press Record first.", print_exception=False)
        wav = recording_of(session.folder)
        if wav is None:
            raise gr.Error("Nothing was recorded.", print_exception=False)
        t = session.transcriber
        return (live_html(t.text, "", session.english, session.sentences),
                "Stopped: the whole recording is being transcribed into the result below.", str(wav))

    def unload(request: gr.Request):
        close(request.session_hash)

    return start, chunk, stop, unload


def make_restore(results_root: Path):
    def restore(name: str | None):
        """The page opened again: a session its tab left behind is shown with its kept text."""
        folder = results_root / Path(str(name or "")).name if name else None
        nothing = (gr.skip(),) * 5 + (None,)
        if folder is None or not (folder / COMMITTED).is_file():
            return nothing
        text = json.loads((folder / COMMITTED).read_text(encoding="utf-8")).get("text", "")
        wav = recording_of(folder)
        if not text or wav is None:
            return nothing
        return ("live", gr.Group(visible=True), live_html(text, "", "cedict", {}), "Kept from your last live session on this page (results are "
                "kept for an hour): its committed text is above; transcribe the recording for the full result.",
                gr.Button(visible=True), str(wav))

    return restore


def wire_live(demo, live: LiveParts, mic_parts: list, common: list, outputs: list, run, settings,
              new_folder: Callable[[], Path], load: Callable, results_root: Path) -> None:
    start, chunk, stop, unload = make_handlers(settings, new_folder, load)
    restore = make_restore(results_root)
    language, english, _lines, model_menu, _gloss = common
    live.mode.change(lambda m: [gr.update(visible=m == "record")] * len(mic_parts) + [gr.Group(visible=m == "live")],
                     live.mode, [*mic_parts, live.group], show_progress="hidden")
    live.audio.start_recording(start, [model_menu], [live.status, live.view], show_progress="hidden")
    live.audio.stream(chunk, [live.audio, language, english, model_menu], [live.view, live.browser], stream_every=0.5, time_limit=LIVE_MINUTES * 60,
                      concurrency_id="live", concurrency_limit=max(1, limits.LIVE_SESSIONS), show_progress="hidden")
    live.audio.stop_recording(stop, None, [live.view, live.status, live.recorded], show_progress="hidden").success(
        run, [live.recorded, *common], outputs, concurrency_id="model")
    live.kept.click(run, [live.recorded, *common], outputs, concurrency_id="model")
    demo.load(restore, [live.browser], [live.mode, live.group, live.view, live.status, live.kept, live.recorded])
    demo.unload(unload)
