"""The Practice tab: pick an HSK sentence (or type one, or take a line from a video), record it,
and see per-syllable feedback, a score, the pitch plot and the history of attempts."""

from __future__ import annotations

import functools
import html
import time
from dataclasses import dataclass

import gradio as gr

from app.speech.audio import load_audio
from app.base.errors import UserError
from app.language.pinyin import pinyin_line, tone_html
from app.practice.assess import (SCORE_RULE, STATUS_COLOUR, STATUS_TEXT, assess, feedback_html, pick_sentence, pitch_frame,
                                 prepare_reference, reference_reading, sentence_bank)
from app.language.text import has_cjk, split_words
from app.language.gloss import cedict_gloss
from app.speech import synthesis

MAX_ATTEMPT_SECONDS = 60.0
CREDIT = ("Sentences: [hsk-sentences-audio](https://pypi.org/project/hsk-sentences-audio/) "
          "(HSK levels 1–6, CC BY-SA 4.0). Glosses: CC-CEDICT (CC BY-SA 4.0).")
HISTORY_HEADERS = ["time", "sentence", "score", "tones right in your voice"]
HISTORY_CALIBRATION = 10  # earlier attempts whose pitch sets the speaker's range


@functools.lru_cache(maxsize=1)
def _by_text() -> dict[str, dict]:
    return {s["chinese"]: s for s in sentence_bank()}


@functools.lru_cache(maxsize=1)
def topics() -> list[str]:
    return sorted({s["topic"] for s in sentence_bank()})


def target_html(text: str) -> str:
    """The sentence to say: tone-coloured hanzi with pinyin, and its English."""
    text = (text or "").strip()
    if not has_cjk(text):
        return ""
    entry = _by_text().get(text)
    english = entry["translation"]["en"] if entry else cedict_gloss(split_words(text))
    level = f" · HSK {entry['hsk_level']} · {entry['topic']}" if entry else ""
    return (f'<div class="zimu-transcript" lang="zh-Hans"><span class="cue">{tone_html(text)}'
            f'<span class="english">{html.escape(english)}{html.escape(level)}</span></span></div>')


LEGEND = '<div class="zimu-legend">' + "".join(
    f'<span style="color:{STATUS_COLOUR[k]}">{STATUS_TEXT[k]}</span>' for k in STATUS_TEXT) + "</div>"


VOICE_NOTE = ("▶ Listen plays a synthesised native reading (Kokoro-82M) of exactly the pinyin shown: tones, 一/不 "
              "and third-tone sandhi as spoken. Its tones are a model's: measured in a carrier sentence, the "
              "female voice's tone shapes were right for 35 of 40 syllables, the male voice's for 23 (README, "
              "\"Voices\"). Imitate the melody of the sentence; take single tones from the pinyin colours.")


def listen(text: str, sex: str, speed: float) -> str:
    """A WAV of the target sentence in an offered voice (cached); one clear line when there is none."""
    text = (text or "").strip()
    if not has_cjk(text):
        raise gr.Error("Choose or type a Chinese sentence first.", print_exception=False)
    reason = synthesis.unavailable_reason()
    if reason:
        raise gr.Error(f"No native voice here: {reason}", print_exception=False)
    try:
        return str(synthesis.speak_to_file(text, synthesis.default_voice(sex), speed))
    except UserError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


def warm_reference(text: str, sex: str) -> None:
    """Start the native reading Check aligns to as soon as the sentence is chosen (in the background)."""
    text = (text or "").strip()
    if has_cjk(text) and not synthesis.unavailable_reason():
        prepare_reference(text, synthesis.default_voice(sex))


def _reference_audio(text: str, sex: str):
    """The native reading at 16 kHz for the pitch plot, or None when no voice is available here."""
    if synthesis.unavailable_reason():
        return None
    try:
        return load_audio(synthesis.speak_to_file(text, synthesis.default_voice(sex)))
    except UserError:
        return None


@dataclass
class PracticeTab:
    target: gr.Textbox
    reference: gr.Audio
    voice: gr.Radio


def build_practice_tab(get_model) -> PracticeTab:
    gr.Markdown("Say a sentence and see, syllable by syllable, whether the initial, the final and the tone "
                "were right — from the words the recogniser heard and from the pitch of your voice. " + CREDIT)
    with gr.Row():
        level = gr.Dropdown(choices=[("any level", 0)] + [(f"HSK {n}", n) for n in range(1, 7)], value=1,
                            label="HSK level")
        topic = gr.Dropdown(choices=[("any topic", "")] + [(t.replace("_", " "), t) for t in topics()], value="",
                            label="Topic")
        new = gr.Button("New sentence", elem_id="practice-new")
    target = gr.Textbox(label="Sentence to say — pick one above, or type your own", elem_id="practice-target")
    target_view = gr.HTML(elem_id="practice-target-view")
    reference = gr.Audio(label="Reference clip (from a video line: listen, then shadow it)", type="filepath",
                         interactive=False, visible=True, elem_id="practice-reference")
    with gr.Row():
        voice = gr.Radio(choices=["female", "male"], value="female", label="Native voice", elem_id="practice-voice")
        listen_normal = gr.Button("▶ Listen", elem_id="practice-listen")
        listen_slow = gr.Button("▶ Listen slowly", elem_id="practice-listen-slow")
    native = gr.Audio(label="Native reading (synthesised)", type="filepath", interactive=False, autoplay=True,
                      elem_id="practice-native")
    gr.Markdown(VOICE_NOTE)
    attempt = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Your attempt",
                       elem_id="practice-attempt")
    check = gr.Button("Check my pronunciation", variant="primary", elem_id="practice-go")
    score = gr.Markdown(elem_id="practice-score")
    gr.HTML(LEGEND)
    feedback = gr.HTML(elem_id="practice-feedback")
    plot = gr.LinePlot(x="time", y="semitones", color="series",
                       label="Your pitch per syllable vs the expected tone shape and the native reading's pitch",
                       x_title="seconds", y_title="pitch (semitones re 100 Hz)", height=260)
    history = gr.Dataframe(headers=HISTORY_HEADERS, label="Your attempts", interactive=False, elem_id="practice-history")
    history_state = gr.State([])
    pitch_history = gr.State([])  # earlier attempts' pitch tracks: the speaker's range

    def new_sentence(level_value: int, topic_value: str):
        try:
            entry = pick_sentence(level_value or None, topic_value or None)
        except ValueError:
            raise gr.Error("No sentence for that level and topic: choose another.", print_exception=False) from None
        return entry["chinese"], target_html(entry["chinese"]), None

    def run_check(text: str, recording: str | None, past: list, sex: str = "female", tracks: list | None = None,
                  progress=gr.Progress()):
        text = (text or "").strip()
        if not has_cjk(text):
            raise gr.Error("Choose or type a Chinese sentence first.", print_exception=False)
        if not recording:
            raise gr.Error("Record your attempt first (or upload one).", print_exception=False)
        try:
            progress(0.1, desc="Listening")
            audio = load_audio(recording, MAX_ATTEMPT_SECONDS, name="your recording")
            reference = reference_reading(text, synthesis.default_voice(sex)) if not synthesis.unavailable_reason() else None
            result = assess(audio, text, get_model(), reference, tuple(tracks or ())[-HISTORY_CALIBRATION:])
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        pitch = result.pitch_tone_accuracy
        pitch_text = f"{pitch:.0%}" if pitch is not None else "–"
        timing = ("syllables timed by aligning your voice to the native reading" if result.timing == "reference"
                  else "syllables timed from the recogniser")
        summary = (f"## Score {result.score}/100\n{SCORE_RULE}\n\n"
                   f"**You said:** {html.escape(result.said_text)} — {html.escape(pinyin_line(result.said_text))}\n\n"
                   f"Tones judged from your voice as expected (after sandhi): {pitch_text} — {timing}; your pitch "
                   f"range from this attempt and your earlier ones. Measured accuracy: README, \"Tone coach\".")
        past = past + [[time.strftime("%H:%M:%S"), text, result.score, pitch_text]]
        progress(0.8, desc="Drawing the native reading's pitch")
        native = reference.audio if reference is not None else _reference_audio(text, sex)
        return (summary, feedback_html(result), pitch_frame(result, native), past[::-1], past,
                [*(tracks or ()), result.pitch][-HISTORY_CALIBRATION:])

    new.click(new_sentence, [level, topic], [target, target_view, reference]).then(
        warm_reference, [target, voice], None, queue=False, show_progress="hidden")
    target.change(target_html, target, target_view)
    # A typed sentence is read once the box is left (not at every keystroke); a line from a video too.
    for event in (target.blur, target.submit, voice.change):
        event(warm_reference, [target, voice], None, queue=False, show_progress="hidden")
    check.click(run_check, [target, attempt, history_state, voice, pitch_history],
                [score, feedback, plot, history, history_state, pitch_history], concurrency_id="model")
    listen_normal.click(lambda t, v: listen(t, v, 1.0), [target, voice], native, concurrency_id="speech")
    listen_slow.click(lambda t, v: listen(t, v, synthesis.SLOW), [target, voice], native, concurrency_id="speech")
    return PracticeTab(target=target, reference=reference, voice=voice)
