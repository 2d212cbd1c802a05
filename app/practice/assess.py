"""Pronunciation practice: the learner says a sentence; each target syllable gets a verdict on its
initial, final and tone, from what the recogniser heard and from the pitch of the voice itself.

1. The attempt is transcribed with no bias toward the target (no prompt, no hotwords), so mistakes
   show up as different characters.
2. Target and recognised text become pinyin syllables (app.language.pinyin.syllables) and are aligned by
   edit distance at syllable level: homophones (他/她) count as right, a near miss costs less than
   a wholly different syllable, so the alignment pairs the syllables a learner meant to say.
3. The tone is judged from the voice, not from the characters: the recogniser repairs tones from
   context (a learner who says mā for mà is written 骂 anyway). Each *target* syllable gets a time span,
   from the native reading of the sentence (synthesised, its syllable timing exact) aligned to the
   attempt (app.practice.align), else from the recogniser's hanzi times; its pitch, on the speaker's
   own range (this attempt and the earlier ones), goes to the trained tone model (app.practice.tone_model),
   which says which tone was heard and how sure it is. A syllable is flagged when the model gives the
   expected tone (after sandhi, 一/不 and neutral tones as spoken) less than its flagging threshold.
   Initials and finals keep the recogniser's verdict.
"""

from __future__ import annotations

import html
import random
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.language.pinyin import Syllable, syllables, syllables_of_pinyin
from app.base.errors import UserError
from app.language.text import has_cjk, spread_span

RIGHT, TONE, INITIAL, FINAL, WRONG, MISSING, EXTRA = "right", "tone", "initial", "final", "wrong", "missing", "extra"
STATUS_TEXT = {RIGHT: "right", TONE: "wrong tone", INITIAL: "wrong initial", FINAL: "wrong final",
               WRONG: "wrong syllable", MISSING: "missing", EXTRA: "extra"}
STATUS_COLOUR = {RIGHT: "#2e7d32", TONE: "#ef6c00", INITIAL: "#c62828", FINAL: "#ad1457",
                 WRONG: "#b71c1c", MISSING: "#9e9e9e", EXTRA: "#6a1b9a"}
CREDIT = {RIGHT: 1.0, TONE: 0.5, INITIAL: 0.5, FINAL: 0.5, WRONG: 0.0, MISSING: 0.0}
EXTRA_PENALTY = 0.5
SCORE_RULE = ("Score = 100 × (right syllables + ½ × syllables with only the tone, only the initial or only "
              "the final wrong − ½ × extra syllables) ÷ syllables in the sentence.")


def judge(target: Syllable, said: Syllable) -> str:
    same_initial, same_final, same_tone = (target.initial == said.initial, target.final == said.final,
                                           target.tone == said.tone)
    if same_initial and same_final:
        return RIGHT if same_tone else TONE
    if not same_tone:
        return WRONG
    if same_final:
        return INITIAL
    if same_initial:
        return FINAL
    return WRONG


def _substitution_cost(target: Syllable, said: Syllable) -> float:
    return {RIGHT: 0.0, TONE: 0.4, INITIAL: 0.5, FINAL: 0.5, WRONG: 1.0}[judge(target, said)]


def align(target: list[Syllable], said: list[Syllable]) -> list[tuple[Syllable | None, Syllable | None]]:
    """Edit-distance alignment at syllable level; pairs (target, said), None on the missing side."""
    n, m = len(target), len(said)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + _substitution_cost(target[i - 1], said[j - 1]))
    pairs: list[tuple[Syllable | None, Syllable | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and np.isclose(cost[i, j], cost[i - 1, j - 1] + _substitution_cost(target[i - 1], said[j - 1])):
            pairs.append((target[i - 1], said[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and np.isclose(cost[i, j], cost[i - 1, j] + 1):
            pairs.append((target[i - 1], None))
            i -= 1
        else:
            pairs.append((None, said[j - 1]))
            j -= 1
    return pairs[::-1]


@dataclass
class SyllableResult:
    target: Syllable | None
    said: Syllable | None
    status: str
    start: float | None = None  # time span of the said syllable in the recording
    end: float | None = None
    heard_tone: int | None = None  # tone classified from pitch
    contour: np.ndarray | None = None
    confidence: float | None = None  # the tone model's probability of heard_tone
    tone_flagged: bool | None = None  # the voice says the expected tone was not said (None: no verdict)

    @property
    def pitch_ok(self) -> bool | None:
        if self.target is None:
            return None
        if self.tone_flagged is not None:
            return not self.tone_flagged
        return None if self.heard_tone is None else self.heard_tone == self.target.spoken_tone

    def as_json(self) -> dict:
        """One line of `python -m app assess`: expected pinyin and tone, what the voice carried."""
        syl = self.target or self.said
        return {"pinyin": syl.marked, "hanzi": syl.hanzi, "expected_tone": self.target.spoken_tone if self.target else None,
                "heard_tone": self.heard_tone, "confidence": None if self.confidence is None else round(self.confidence, 3),
                "tone_ok": self.pitch_ok, "status": self.status,
                "start": None if self.start is None else round(self.start, 3),
                "end": None if self.end is None else round(self.end, 3)}


@dataclass
class Assessment:
    target_text: str
    said_text: str
    results: list[SyllableResult]
    score: int
    pitch: object | None = None  # app.practice.tones.PitchTrack
    timing: str = "recogniser"  # where the syllable spans came from: "reference" (aligned) or "recogniser"

    @property
    def pitch_tone_accuracy(self) -> float | None:
        checked = [r.pitch_ok for r in self.results if r.pitch_ok is not None]
        return sum(checked) / len(checked) if checked else None


def score(results: list[SyllableResult]) -> int:
    targets = [r for r in results if r.target is not None]
    if not targets:
        return 0
    credit = sum(CREDIT[r.status] for r in targets)
    extras = sum(1 for r in results if r.status == EXTRA)
    return int(round(100 * max(0.0, credit - EXTRA_PENALTY * extras) / len(targets)))


def compare(target_text: str, said_text: str, said_times: list[tuple[float, float]] | None = None) -> list[SyllableResult]:
    """Align and judge; `said_times` gives each recognised hanzi's (start, end) when known."""
    target, said = syllables(target_text), syllables(said_text)
    times = {id(s): t for s, t in zip(said, said_times)} if said_times and len(said_times) == len(said) else {}
    results = []
    for t, s in align(target, said):
        status = MISSING if s is None else EXTRA if t is None else judge(t, s)
        start, end = times.get(id(s), (None, None)) if s is not None else (None, None)
        results.append(SyllableResult(t, s, status, start, end))
    return results


def hanzi_times(transcript) -> list[tuple[float, float]]:
    """(start, end) of every recognised hanzi, each jieba word's span shared evenly by its characters."""
    spans = []
    for cue in transcript.cues:
        for word in cue.words:
            chars = [c for c in word.text if has_cjk(c)]
            spans += [(start, end) for _, start, end in spread_span(chars, word.start, word.end)]
    return spans


@dataclass(frozen=True)
class Reference:
    """A native reading of the target: 16-kHz audio and each target syllable's span in it."""
    audio: np.ndarray
    spans: list[tuple[float, float] | None]


_READINGS: OrderedDict[tuple[str, str | None], Future] = OrderedDict()  # the last few, newest last
_READINGS_KEPT = 32
_READINGS_LOCK = threading.Lock()
_READER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference-reading")


def prepare_reference(text: str, voice: str | None = None) -> Future:
    """Start making the native reading of `text` in the background, once per text and voice: Practice
    calls it when a sentence is chosen, so that Check finds the reading made instead of waiting 1-3 s
    for the synthesis (a check of a 5-s attempt should take under 2 s)."""
    key = (text, voice)
    with _READINGS_LOCK:
        future = _READINGS.get(key)
        if future is None:
            future = _READINGS[key] = _READER.submit(_make_reference, text, voice)
            while len(_READINGS) > _READINGS_KEPT:
                _READINGS.popitem(last=False)
        _READINGS.move_to_end(key)
        return future


def reference_reading(text: str, voice: str | None = None) -> Reference | None:
    """The synthesised reading of `text` (app.speech.synthesis.speak_timed), or None when no voice is
    available here or its syllables are not the target's (digits read differently)."""
    return prepare_reference(text, voice).result()


def _make_reference(text: str, voice: str | None) -> Reference | None:
    from app.speech import synthesis
    from app.speech.audio import resample

    if synthesis.unavailable_reason():
        return None
    try:
        spoken = synthesis.speak_timed(text, voice)
    except UserError:
        return None
    if [s.marked for s in spoken.syllables] != [s.marked for s in syllables(text)]:
        return None
    return Reference(resample(spoken.audio, synthesis.SAMPLE_RATE), spoken.spans)


def _target_spans(results: list[SyllableResult], audio: np.ndarray, reference: Reference | None):
    """(one span per target syllable, where they came from): aligned to the reference when there is one."""
    if reference is not None:
        from app.practice.align import align_to_reference

        return align_to_reference(audio, reference.audio, reference.spans), "reference"
    return [(r.start, r.end) if r.start is not None else None for r in results if r.target is not None], "recogniser"


def judge_tones(results: list[SyllableResult], track, spans, calibration, audio) -> None:
    """Give each target syllable the voice's verdict on its tone, and fold it into the status."""
    from app.practice.tone_model import default_model, heard_tones
    from app.practice.tones import classify

    targets = [r for r in results if r.target is not None]
    model = default_model()
    heard = heard_tones(track, spans, calibration, audio, model) if model else [None] * len(spans)
    for r, span, h in zip(targets, spans, heard):
        if span is not None and r.status != MISSING:
            r.start, r.end = span
        if h is None:  # unvoiced, no span, or no trained model: the template classifier's guess, no verdict
            if r.start is not None:
                r.heard_tone, r.contour = classify(track, r.start, r.end)
            continue
        r.heard_tone, r.confidence = h.tone, h.confidence
        r.tone_flagged = h.chance_of(r.target.spoken_tone) < model.flag_below
        if r.status in (RIGHT, TONE):
            r.status = TONE if r.tone_flagged else RIGHT
        elif r.status in (INITIAL, FINAL) and r.tone_flagged:
            r.status = WRONG


def assess(audio: np.ndarray, target_text: str, model, reference: Reference | None = None,
           history: tuple = (), track=None) -> Assessment:
    """Transcribe the attempt (unbiased), align with the target, and judge every tone from the voice.
    `history`: the speaker's earlier attempts' pitch tracks (calibration of their range); `track`: this
    attempt's, when the caller has it already."""
    from app.practice.tone_model import Calibration
    from app.practice.tones import pitch_track, refine_spans
    from app.speech.transcribe import TranscribeOptions, transcribe

    transcript = transcribe(audio, model, TranscribeOptions(language="zh", english="none"))
    said_text = transcript.text
    track = pitch_track(audio) if track is None else track
    results = compare(target_text, said_text, refine_spans(track, hanzi_times(transcript)))
    spans, timing = _target_spans(results, audio, reference)
    judge_tones(results, track, spans, Calibration.of([track, *history]), audio)
    return Assessment(target_text, said_text, results, score(results), track, timing)


def assess_pinyin(audio: np.ndarray, pinyin_text: str, history: tuple = (), track=None) -> Assessment:
    """Tones only, for syllables given as pinyin (`python -m app assess --pinyin mā`): no recogniser; the
    voiced stretch is shared among the syllables and each boundary snapped to a pause."""
    from app.practice.tone_model import Calibration
    from app.practice.tones import pitch_track, refine_spans

    try:
        target = syllables_of_pinyin(pinyin_text)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not target:
        raise UserError("no pinyin to check")
    track = pitch_track(audio) if track is None else track
    even = [(k / len(target), (k + 1) / len(target)) for k in range(len(target))]
    spans = refine_spans(track, even) if not np.isnan(track.semitones).all() else [None] * len(target)
    results = [SyllableResult(t, t, RIGHT) for t in target]
    judge_tones(results, track, spans, Calibration.of([track, *history]), audio)
    return Assessment(pinyin_text, pinyin_text, results, score(results), track, "pinyin")


# ---- presentation -------------------------------------------------------------------------------

def feedback_html(assessment: Assessment) -> str:
    cells = []
    for r in assessment.results:
        syl = r.target or r.said
        colour = STATUS_COLOUR[r.status]
        said = ""
        if r.said is not None and r.target is not None and r.status != RIGHT:
            said = f"<small>heard {html.escape(r.said.hanzi)} {html.escape(r.said.marked)}</small>"
        pitch = _tone_note(r)
        strike = "text-decoration:line-through;" if r.status == MISSING else ""
        prefix = "+" if r.status == EXTRA else ""
        cells.append(
            f'<span class="syl {r.status}" style="border-color:{colour};{strike}" title="{STATUS_TEXT[r.status]}">'
            f'<span class="py" style="color:{colour}">{prefix}{html.escape(syl.marked)}</span>'
            f'<span class="hz">{html.escape(syl.hanzi)}</span>'
            f'<span class="st" style="color:{colour}">{STATUS_TEXT[r.status]}</span>{said}{pitch}</span>')
    return f'<div class="zimu-practice">{"".join(cells)}</div>'


ORDINAL = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "neutral"}


def tone_verdict(r: SyllableResult) -> str | None:
    """'you said 2nd, expected 4th' — the voice's verdict in words (None when there is none)."""
    if r.target is None or r.heard_tone is None:
        return None
    expected = ORDINAL[r.target.spoken_tone]
    sure = f" ({r.confidence:.0%} sure)" if r.confidence is not None else ""
    if r.pitch_ok:
        return f"tone right: {expected}{sure}"
    if r.heard_tone == r.target.spoken_tone:
        return f"tone unclear, expected {expected}"
    return f"you said {ORDINAL[r.heard_tone]}, expected {expected}{sure}"


def _tone_note(r: SyllableResult) -> str:
    verdict = tone_verdict(r)
    if verdict is None:
        return ""
    mark = "✓" if r.pitch_ok else "✗"
    return (f"<small class='tone-verdict' title='{html.escape(verdict)}'>♪{ORDINAL[r.heard_tone]} {mark}</small>"
            + ("" if r.pitch_ok else f"<small class='tone-said'>{html.escape(verdict)}</small>"))


def _reference_rows(track, reference: np.ndarray) -> list[tuple[float, float, str]]:
    """The native reading's pitch laid over the learner's: its voiced stretch stretched onto the learner's,
    shifted so the two medians meet (a man's and a woman's voice then compare by shape)."""
    from app.practice.tones import pitch_track

    ref = pitch_track(reference)
    mine, theirs = ~np.isnan(track.semitones), ~np.isnan(ref.semitones)
    if mine.sum() < 3 or theirs.sum() < 3:
        return []
    (a, b), (c, d) = track.times[mine][[0, -1]], ref.times[theirs][[0, -1]]
    shift = float(np.median(track.semitones[mine]) - np.median(ref.semitones[theirs]))
    times = a + (ref.times[theirs] - c) * (b - a) / max(d - c, 1e-6)
    return [(float(t), float(v) + shift, "native reading") for t, v in zip(times, ref.semitones[theirs])]


def pitch_frame(assessment: Assessment, reference: np.ndarray | None = None):
    """Long-form table for gr.LinePlot: the learner's pitch per syllable, the expected shapes and, given
    the native reading's 16-kHz audio, its pitch on the learner's time axis."""
    import pandas as pd

    from app.practice.tones import expected_contour

    rows = []
    track = assessment.pitch
    if track is None:
        return pd.DataFrame(columns=["time", "semitones", "series"])
    for r in assessment.results:
        if r.start is None or r.target is None:
            continue
        inside = (track.times >= r.start) & (track.times <= r.end) & ~np.isnan(track.semitones)
        rows += [(float(t), float(v), "your pitch") for t, v in zip(track.times[inside], track.semitones[inside])]
        times, values = expected_contour(track, r.target.spoken_tone, r.start, r.end)
        rows += [(float(t), float(v), "expected") for t, v in zip(times, values)]
    if reference is not None:
        rows += _reference_rows(track, reference)
    return pd.DataFrame(rows, columns=["time", "semitones", "series"])


# ---- sentence bank ------------------------------------------------------------------------------

def sentence_bank() -> list[dict]:
    """HSK sentences from the PyPI package hsk-sentences-audio (CC BY-SA 4.0)."""
    import hsk_sentences_audio

    return hsk_sentences_audio.load_sentences()


def pick_sentence(level: int | None = None, topic: str | None = None, rng: random.Random | None = None) -> dict:
    pool = [s for s in sentence_bank() if (level is None or s["hsk_level"] == level)
            and (not topic or s["topic"] == topic)]
    if not pool:
        raise ValueError("no sentence for that level and topic")
    return (rng or random).choice(pool)
