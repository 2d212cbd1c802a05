"""Gradio Blocks UI: Microphone, Upload and Video URL tabs sharing one result panel
(player, tone-coloured transcript, table, SRT/VTT/ASS/TXT downloads)."""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import gradio as gr

from app.audio import SAMPLE_RATE, load_audio, write_audio
from app.cli import LANGUAGES
from app.errors import UserError
from app.jobs import export, iter_job, safe_stem
from app.media import check_url
from app.model import MENU, MODEL_ENV, load_model, menu_entry
from app.pinyin import TONE_COLOURS, tone_html
from app.subtitles import FORMATS, LINE_KINDS, Cue
from app.transcribe import TranscribeOptions, Transcript
from app.translate import ENGLISH_SOURCES, SOURCE_NAMES
from app.ui_practice import build_practice_tab

ASSETS = Path(__file__).resolve().parent.parent / "assets"
RESULTS_ROOT = Path(tempfile.gettempdir()) / "zimu-results"
MAX_UPLOAD_MB = float(os.environ.get("ZIMU_MAX_UPLOAD_MB", 500))
RESULT_TTL = float(os.environ.get("ZIMU_RESULT_TTL", 3600))  # seconds a result's files stay downloadable
BROWSER_AUDIO = {".mp3", ".wav", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".flac", ".webm"}
TABLE_HEADERS = ["start", "end", "hanzi", "pinyin", "English"]
# The LLM source is the server's to configure (a visitor must not point the server at a URL).
LLM_URL, LLM_MODEL = os.environ.get("ZIMU_LLM_URL"), os.environ.get("ZIMU_LLM_MODEL")


def english_choices() -> list[tuple[str, str]]:
    return [(label, key) for key, label in ENGLISH_SOURCES.items() if key != "llm" or (LLM_URL and LLM_MODEL)]


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
    from app import housekeeping

    RESULTS_ROOT.mkdir(parents=True, exist_ok=True)
    housekeeping.sweep_results(RESULTS_ROOT, RESULT_TTL)
    return Path(tempfile.mkdtemp(prefix=housekeeping.owned_prefix(housekeeping.RESULT_PREFIX), dir=RESULTS_ROOT))


def markdown_text(text: str) -> str:
    """A remote page's title shown as plain text in Markdown: no links, images or HTML from it."""
    return re.sub(r"([\\`*_{}\[\]()#+!|~-])", r"\\\1", html.escape(" ".join(text.split()), quote=False))


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:05.2f}"


def transcript_html(cues: list[Cue]) -> str:
    blocks = []
    for cue in cues:
        english = f'<span class="english">{html.escape(cue.english)}</span>' if cue.english else ""
        blocks.append(f'<span class="cue"><span class="cue-time">{_clock(cue.start)}</span>'
                      f"{tone_html(cue.hanzi)}{english}</span>")
    return f'<div class="zimu-transcript" lang="zh-Hans">{"".join(blocks)}</div>'


def transcript_rows(cues: list[Cue]) -> list[list[str]]:
    return [[_clock(c.start), _clock(c.end), c.hanzi, c.pinyin, c.english] for c in cues]


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


def build_ui(model_name: str | None = None, device: str | None = None, compute_type: str | None = None,
             max_duration: float | None = None, allow_local_urls: bool = False,
             max_download_mb: float | None = None) -> gr.Blocks:
    from app.audio import DEFAULT_MAX_DURATION

    max_duration = max_duration or DEFAULT_MAX_DURATION
    models, started_model = model_choices(model_name)

    def run(source: str | None, language: str, english: str, lines: list[str], model_choice: str | None = None,
            progress=gr.Progress()):
        """A generator: the cues decoded so far appear batch by batch while a long file is still being
        transcribed (status, transcript and table only), then the whole result with its files."""
        if not source:
            raise gr.Error("Record, upload or paste something first.", print_exception=False)
        if english not in {key for _, key in english_choices()}:
            raise gr.Error("Choose an English line from the menu.", print_exception=False)
        options = TranscribeOptions(language=None if language == "auto" else language, english=english,
                                    llm_url=LLM_URL, llm_model=LLM_MODEL)
        folder = _new_result_dir()
        try:
            # A model that cannot be loaded (offline, not downloaded yet) is a UserError: one line below.
            model = load_model(model_choice or model_name, device, compute_type)
            for job in iter_job(str(source), model, options, max_duration,
                                progress=lambda f, stage: progress(f, desc=stage), allow_local=allow_local_urls,
                                max_download_mb=max_download_mb):
                if isinstance(job, Transcript):
                    yield {status: f"Transcribing… {len(job.cues)} subtitles so far, up to "
                                   f"{_clock(job.cues[-1].end)} — you can start reading.",
                           transcript: transcript_html(job.cues), table: transcript_rows(job.cues)}
            # An uploaded file's name never builds a path; a link's title does, sanitised.
            stem = "subtitles" if job.media_path is not None else safe_stem(job.title)
            files = export(job.transcript, folder, stem, FORMATS, lines or ["hanzi"])
            media = job.media_path
            audio_file = media if media is not None and media.suffix.lower() in BROWSER_AUDIO else \
                write_audio(job.audio, folder / "audio.mp3")
        except UserError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise gr.Error(str(exc), print_exception=False) from None
        t = job.transcript
        message = (f"**{markdown_text(job.title)}** · {len(t.cues)} subtitles · {t.duration:.1f} s of audio · "
                   f"transcribed in {t.seconds:.1f} s · language: {t.language} · "
                   f"English: {SOURCE_NAMES.get(t.english_source, 'none')}"
                   + (" · from the cache (this video was transcribed before)" if job.cached else ""))
        message += "".join(f"\n\n⚠️ {html.escape(w)}" for w in t.warnings)
        lines_menu = gr.Dropdown(choices=[(f"{_clock(c.start)}  {c.hanzi}", i) for i, c in enumerate(t.cues)],
                                 value=0)
        yield (message, str(audio_file), transcript_html(t.cues), transcript_rows(t.cues),
               *[str(files[f]) for f in FORMATS], t, str(folder), stem, lines_menu, str(audio_file))

    def run_url(url: str | None, language: str, english: str, lines: list[str], model_choice: str | None = None,
                progress=gr.Progress()):
        """The Video URL tab takes http(s) links only: text that is not one must never be read as a
        path on the server (run_job treats non-links as local files)."""
        try:
            url = check_url(url or "", allow_local_urls)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        yield from run(url, language, english, lines, model_choice, progress)

    def relines(transcript: Transcript | None, folder: str | None, stem: str | None, lines: list[str]):
        """Rewrite the files when the learner picks other lines: no second transcription."""
        if transcript is None or not folder or not Path(folder).is_dir():
            return [gr.skip()] * len(FORMATS)
        files = export(transcript, Path(folder), stem, FORMATS, lines or ["hanzi"])
        return [str(files[f]) for f in FORMATS]

    def practise_line(transcript: Transcript | None, folder: str | None, player: str | None, index: int | None):
        """Shadowing: the chosen subtitle line becomes the Practice target, its audio the reference."""
        if transcript is None or index is None or not player or not (0 <= int(index) < len(transcript.cues)):
            raise gr.Error("Transcribe something first, then pick a line.", print_exception=False)
        cue = transcript.cues[int(index)]
        audio = load_audio(player)
        a, b = max(0, int((cue.start - 0.2) * SAMPLE_RATE)), int((cue.end + 0.3) * SAMPLE_RATE)
        clip = write_audio(audio[a:b], Path(folder) / f"line-{int(index) + 1}.mp3")
        return gr.Tabs(selected="practice"), cue.hanzi, str(clip)

    def select_row(event: gr.SelectData):
        return event.index[0] if isinstance(event.index, (list, tuple)) else event.index

    # delete_cache: Gradio's copies of uploads and outputs go after RESULT_TTL too, so disk stays bounded.
    # analytics_enabled=False: a public Space must not call Gradio's servers about its visitors.
    with _Blocks(title="Zimu · Mandarin subtitles for learners", delete_cache=(RESULT_TTL, RESULT_TTL),
                 analytics_enabled=False) as demo:
        gr.Markdown("# 字幕 Zimu — Mandarin speech → hanzi, pinyin and English subtitles\n"
                    "Simplified characters, pinyin with tone marks coloured by tone, an English line, "
                    "subtitle files to download (SRT, WebVTT, ASS, TXT), and pronunciation practice.")
        with gr.Tabs(elem_id="main-tabs") as main_tabs:
            with gr.Tab("Subtitles", id="subtitles"):
                with gr.Row():
                    language = gr.Dropdown(choices=[(v, k) for k, v in LANGUAGES.items()], value="zh",
                                           label="Spoken language")
                    english = gr.Dropdown(choices=english_choices(), value="auto", label="English line")
                    lines = gr.CheckboxGroup(choices=[(k.capitalize(), k) for k in LINE_KINDS],
                                             value=list(LINE_KINDS), label="Subtitle lines")
                    model_menu = gr.Dropdown(choices=models, value=started_model, label="Model",
                                             info="bigger: better, slower; downloaded on first use",
                                             elem_id="model-menu")
                with gr.Tabs():
                    with gr.Tab("Microphone", id="mic"):
                        mic = gr.Audio(sources=["microphone"], type="filepath", label="Record Mandarin speech")
                        mic_button = gr.Button("Transcribe recording", variant="primary")
                    with gr.Tab("Upload", id="upload"):
                        upload = gr.File(label="Audio or video file (anything ffmpeg decodes)", type="filepath",
                                         file_types=["audio", "video"], elem_id="upload-file")
                        upload_button = gr.Button("Transcribe file", variant="primary", elem_id="upload-go")
                    with gr.Tab("Video URL", id="url"):
                        url = gr.Textbox(label="Video link (YouTube, Bilibili, or a direct media link)",
                                         placeholder="https://www.bilibili.com/video/BV…", elem_id="url-box")
                        url_button = gr.Button("Download and transcribe", variant="primary", elem_id="url-go")
                status = gr.Markdown(elem_id="status")
                player = gr.Audio(label="Audio", interactive=False, type="filepath")
                gr.HTML(LEGEND)
                transcript = gr.HTML(elem_id="transcript")
                table = gr.Dataframe(headers=TABLE_HEADERS, label="Transcript (select a row to practise it)",
                                     wrap=True, interactive=False, elem_id="table")
                with gr.Row():
                    downloads = [gr.DownloadButton(f"Download {f.upper()}", elem_id=f"download-{f}")
                                 for f in FORMATS]
                with gr.Row():
                    line_menu = gr.Dropdown(choices=[], label="Practise a line (shadowing)", elem_id="line-menu",
                                            scale=4)
                    practise = gr.Button("Practise this line", elem_id="practise-line", scale=1)
            with gr.Tab("Practice", id="practice"):
                practice = build_practice_tab(lambda: load_model(model_name, device, compute_type))
        gr.Markdown("Model: Whisper (faster-whisper / CTranslate2). Pinyin: CC-CEDICT readings (README's "
                    "convention), jieba words. "
                    "Glosses: CC-CEDICT (CC BY-SA 4.0).")
        state = gr.State(None)
        folder_state = gr.State(None)
        stem_state = gr.State(None)
        player_state = gr.State(None)

        outputs = [status, player, transcript, table, *downloads, state, folder_state, stem_state, line_menu,
                   player_state]
        for button, source, fn in ((mic_button, mic, run), (upload_button, upload, run), (url_button, url, run_url)):
            button.click(fn, [source, language, english, lines, model_menu], outputs, concurrency_id="model")
        url.submit(run_url, [url, language, english, lines, model_menu], outputs, concurrency_id="model")
        lines.change(relines, [state, folder_state, stem_state, lines], downloads)
        shadow_outputs = [main_tabs, practice.target, practice.reference]
        practise.click(practise_line, [state, folder_state, player_state, line_menu], shadow_outputs)
        table.select(select_row, None, line_menu).then(
            practise_line, [state, folder_state, player_state, line_menu], shadow_outputs)
    return demo


def launch(args) -> None:
    from app import housekeeping, limits

    # A killed server ran no clean-up: its downloads, results and Gradio cache copies go first.
    swept = housekeeping.sweep(RESULT_TTL, RESULTS_ROOT, starting=True)
    print(f"zimu: start-up clean-up: {swept.line()}", flush=True)
    housekeeping.keep_tidy(RESULT_TTL, RESULTS_ROOT)
    load_model(args.model, None if args.device == "auto" else args.device, args.compute_type)  # fail fast
    demo = build_ui(args.model, None if args.device == "auto" else args.device, args.compute_type,
                    args.max_duration, args.allow_local_urls, args.max_download_mb)
    housekeeping.stop_empty_upload_files(demo)  # Gradio's gr.File leaves a 0-byte file per upload
    # One transcription at a time per CPU-bound model; others wait in Gradio's queue, which is
    # bounded in size and per client (app/limits.py).
    demo.queue(default_concurrency_limit=int(os.environ.get("ZIMU_CONCURRENCY", 1)),
               max_size=2 * limits.QUEUE_SIZE)
    limits.bound_queue(demo, "model")
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                css_paths=[ASSETS / "style.css"], theme=gr.themes.Soft(),
                allowed_paths=[str(RESULTS_ROOT)], max_file_size=int(MAX_UPLOAD_MB * 1e6))
