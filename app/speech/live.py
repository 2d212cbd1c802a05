"""Live captions: a streaming transcriber fed 16 kHz float32 chunks, as a microphone delivers them.

The policy is LocalAgreement-2 over re-decoded windows, as in whisper_streaming (Macháček et al.,
"Turning Whisper into Real-Time Transcription System", 2023; github.com/ufal/whisper_streaming):

* the audio since the last trimmed point is kept in a buffer and decoded again every `step`
  seconds of new audio (faster-whisper, beam 3, word timestamps, the file paths' hallucination
  guards: app.speech.guards);
* the hypothesis is cut into characters (hanzi, letters, digits; each mark Whisper wrote rides on
  the character before it), timed from Whisper's words; characters the committed text already
  covers are left out (where the hypothesis says the committed tail again near the committed end,
  else by time, then by an overlap of 2-10 characters with the committed tail);
* what the last two hypotheses agree on from their start (their longest common prefix, up to the
  last word end both share) is **committed** and never changes again; the rest is the
  **tentative** tail, shown greyed;
* Silero VAD (faster-whisper's) skips silence: a buffer without speech is not decoded, and when
  the speaker has paused for `end_silence` the buffer's hypothesis is committed whole (the
  utterance is over; nothing will change it; but not a character starting at the speech's very
  end: the next utterance's) and the buffer starts again after the pause;
* the buffer is trimmed in the middle of a pause the committed text has passed, once it is longer
  than `trim_after`, and at the last committed character when it exceeds `max_buffer`; a
  hypothesis that says only the committed text again while over a second of speech follows it
  (Whisper ended early) moves the buffer's start to the committed end, so the next one hears it.

The Gradio Microphone tab (app.ui) and `python -m app live` (app.cli) both drive `LiveTranscriber`;
`replay` feeds a file as a microphone would, in real time or as fast as decoding goes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
from rapidfuzz.distance import Levenshtein

from app.language.punctuation import MARKS, SENTENCE_MARKS, sentence_mark
from app.language.subtitles import Word
from app.language.text import is_punctuation, spread_span
from app.speech.audio import SAMPLE_RATE, to_float32
from app.speech.guards import (LOW_LOGPROB, MAX_COMPRESSION_RATIO, NO_SPEECH_PROB, collapse_char_runs, collapse_repeats,
                               drop_segment, strip_known_hallucinations)
from app.speech.transcribe import timed_words

DEBUG = os.environ.get("ZIMU_LIVE_DEBUG") == "1"
OVERLAP = 0.1  # seconds: a new character starting this much before the committed end is still new
MIN_DUPLICATE, MAX_DUPLICATE = 2, 10  # characters of the committed tail a hypothesis may repeat
LOOSE_REPEAT, LOOSE_SIMILARITY = 5, 0.8  # a repeat of the committed tail this long, this alike, is dropped
TAIL_WINDOW = 0.5  # seconds: a repeat of the committed tail ends this close to where the committed text ends
NEXT_ONSET = 0.1  # seconds: a character starting this close to the speech's end before a pause belongs after it
UNHEARD = 1.0  # seconds of speech after a hypothesis's end that mean Whisper skipped them
MAX_NEW_TOKENS = 220  # half of Whisper's 448-token context, leaving room for a prompt


@dataclass(frozen=True)
class Char:
    """One character of a hypothesis, timed in stream seconds, with the mark Whisper wrote after it."""

    text: str
    start: float
    end: float
    mark: str = ""


@dataclass(frozen=True)
class Piece:
    """Committed text: once emitted it never changes. `committed_at`: the clock when it was committed."""

    text: str
    start: float
    end: float
    committed_at: float


class Agreement:
    """LocalAgreement-2 on characters: commit the longest common prefix of the last two hypotheses.

    Hypotheses are lists of `Char` in stream time. Pure (no model): the unit tests drive it."""

    def __init__(self, whole_words: bool = True) -> None:
        self.whole_words = whole_words
        self.committed: list[Char] = []
        self.tentative: list[Char] = []  # the last hypothesis beyond the committed text
        self.last_end = 0.0  # stream seconds the committed text reaches

    def fresh(self, hypothesis: list[Char]) -> list[Char]:
        """The part of a hypothesis after the committed text: where the hypothesis says the committed
        tail again near the committed end (text beats timestamps, which move between decodings);
        else by time, then without a repeated tail."""
        at = self._after_committed_tail(hypothesis)
        if at is not None:
            return hypothesis[at:]
        new = [c for c in hypothesis if c.start > self.last_end - OVERLAP]
        if new and self.committed and abs(new[0].start - self.last_end) < 1.0:
            tail = "".join(c.text for c in self.committed[-MAX_DUPLICATE:])
            head = "".join(c.text for c in new[:MAX_DUPLICATE])
            for n in range(min(len(tail), len(head)), 0, -1):
                # One character only when it overlaps the committed one (谢谢: the second 谢 is new).
                if tail.endswith(head[:n]) and (n >= MIN_DUPLICATE or new[0].start < self.last_end):
                    return new[n:]
            for n in range(min(len(tail), len(head)), LOOSE_REPEAT - 1, -1):
                # A phrase said again at once with a character or two heard otherwise is Whisper
                # repeating itself (是唯一同去月下漫步吧 then 四位一同去月下漫步吧), not speech.
                if Levenshtein.normalized_similarity(tail[-n:], head[:n]) >= LOOSE_SIMILARITY:
                    return new[n:]
        return new

    def _after_committed_tail(self, hypothesis: list[Char]) -> int | None:
        """The index after the hypothesis's characters that repeat the committed tail (at least
        MIN_DUPLICATE characters, the longest repeat, ending within TAIL_WINDOW of the committed end).
        Time alone lost 人 of 万人尽仰 when 万 was re-timed 0.1 s earlier."""
        if not self.committed:
            return None
        tail = "".join(c.text for c in self.committed[-MAX_DUPLICATE:])
        text = "".join(c.text for c in hypothesis)
        best = None
        for k in range(MIN_DUPLICATE, len(hypothesis) + 1):
            if abs(hypothesis[k - 1].end - self.last_end) > TAIL_WINDOW:
                continue
            m = 0
            while m < min(len(tail), k) and text[k - 1 - m] == tail[-1 - m]:
                m += 1
            if m >= MIN_DUPLICATE:
                key = (m, -abs(hypothesis[k - 1].end - self.last_end))
                if best is None or key > best[0]:
                    best = (key, k)
        return best[1] if best else None

    def insert(self, hypothesis: list[Char], horizon: float = float("inf")) -> list[Char]:
        """Compare with the previous hypothesis; returns the characters committed now. Only characters
        ending by `horizon` may be committed (the last fraction of a second of audio is often a
        syllable heard in part, which two hypotheses from nearly the same audio agree on wrongly)."""
        new = self.fresh(hypothesis)
        agreed = 0
        while agreed < min(len(new), len(self.tentative)) and new[agreed].text == self.tentative[agreed].text \
                and new[agreed].end <= horizon:
            agreed += 1
        if self.whole_words:
            agreed = word_boundary(new, self.tentative, agreed)
        self.tentative = new[agreed:]
        return self._commit(new[:agreed])

    def finish(self, hypothesis: list[Char] | None = None) -> list[Char]:
        """Commit all of `hypothesis` beyond the committed text (the last tentative tail without one):
        the audio it was decoded from is complete."""
        new = self.tentative if hypothesis is None else self.fresh(hypothesis)
        if not new:  # the last decoding gave nothing usable (a guard dropped it): keep what was heard
            new = self.tentative
        self.tentative = []
        return self._commit(new)

    def forget(self) -> None:
        """The tentative tail was not speech (the buffer holds none): drop it."""
        self.tentative = []

    def cut(self, at: float) -> None:
        """The buffer now starts at `at`, in a pause after all committed speech: the committed text
        ends there (Whisper often stretches the last word before a pause into it); never later."""
        self.last_end = min(self.last_end, at)

    def _commit(self, chars: list[Char]) -> list[Char]:
        if chars:
            self.committed.extend(chars)
            self.last_end = max(self.last_end, chars[-1].end)
        return chars

    def text(self) -> str:
        return "".join(c.text + c.mark for c in self.committed)


def word_boundary(a: list[Char], b: list[Char], agreed: int) -> int:
    """The longest agreed prefix (at most `agreed` characters) that ends at a word boundary (jieba) in
    both hypotheses. Two hypotheses that share 振 but go on 振钱 / 振勤 have not settled the word,
    and its first character is as likely wrong as the rest (挣钱)."""
    from app.language.text import split_words

    if agreed == 0:
        return 0

    def ends(chars: list[Char]) -> set[int]:
        out, at = set(), 0
        for word in split_words("".join(c.text for c in chars)):
            at += len(word)
            out.add(at)
        return out

    # A hypothesis that ends at `agreed` has no word beyond it yet: its end is a boundary only when
    # the other one's is too (checked through the intersection).
    common = ends(a) & ends(b)
    return max((n for n in common if n <= agreed), default=0)


def chars_of(words: list[Word], offset: float) -> list[Char]:
    """Timed words (buffer seconds) as characters in stream time; a mark joins the character before it."""
    chars: list[Char] = []
    for word in words:
        letters = [c for c in word.text if not c.isspace() and not is_punctuation(c)]
        timed = iter(spread_span(letters, word.start, word.end))
        for ch in word.text:
            if ch.isspace():
                continue
            if not is_punctuation(ch):
                c, s, e = next(timed)
                chars.append(Char(c, s + offset, e + offset))
            elif chars and ch in MARKS and not chars[-1].mark:
                chars[-1] = Char(chars[-1].text, chars[-1].start, chars[-1].end, ch)
    return chars


def before_onset(hypothesis: list[Char], speech_end: float) -> list[Char]:
    """The characters of an utterance that ends at `speech_end` (stream seconds): not those that
    start at its very end, the next utterance's first syllable."""
    return [c for c in hypothesis if c.start < speech_end - NEXT_ONSET]


@dataclass
class LiveOptions:
    language: str | None = "zh"
    beam_size: int = 3  # greedy (1) committed 2-4 points more CER; short windows leave time for a beam (README)
    step: float = 0.5  # seconds of new audio between decodings (when decoding keeps up)
    trim_after: float = 2.0  # trim the buffer at a committed pause once it is this long
    max_buffer: float = 15.0  # trim at the last committed character beyond this
    margin: float = 0.0  # seconds at the buffer's end whose characters wait for the next decoding
    keep_committed: float | None = 3.0  # without a pause, trim to this much committed speech (None: don't)
    end_silence: float = 0.3  # a pause this long ends the utterance: its hypothesis is committed whole
    prompt_chars: int = 0  # committed characters before the buffer given as Whisper's prompt (0: none; see above)
    vad_threshold: float = 0.5
    temperature: tuple[float, ...] = (0.0,)  # no fallback: a failed decoding is re-done 1 s later anyway
    tokens_per_second: float = 10.0  # at most this many tokens per second of buffer (a loop stops there)
    whole_words: bool = True  # commit whole words only (Agreement.whole_words)


# The encoder's input: Whisper pads every window to 30 s (3000 feature frames), and on 2 CPU cores
# the encoder then costs about 2 s whatever the window holds. A live buffer holds 1-15 s, so its
# features are padded only to their own length plus SHORT_PAD frames (10 ms each). Side by side (5
# rounds, alternating order, medians; greedy, word timestamps, shared 2-core machine): a 3-s buffer
# 1.55 s -> 0.36 s, an 8-s buffer 1.94 s -> 0.86 s, text much the same (CTranslate2 takes the
# shorter input; the positional embeddings are sliced; README, "Live captions"). faster-whisper has no option for it (its `chunk_length`
# changes the model's shared feature extractor, which uploads use too), so its `pad_or_trim` is
# wrapped, and the shorter padding applies only on a thread inside `short_windows()`.
SHORT_PAD = 100
_short = threading.local()


def _install_short_padding() -> bool:
    import faster_whisper.transcribe as fw

    original = getattr(fw, "pad_or_trim", None)
    if original is None:  # another faster-whisper: full windows, slower but the same text
        return False
    if getattr(original, "zimu_short", False):
        return True

    def pad_or_trim(array, length: int = 3000, *, axis: int = -1):
        if getattr(_short, "on", False) and length == 3000:
            length = min(length, -(-array.shape[axis] // 100) * 100 + SHORT_PAD)
        return original(array, length, axis=axis)

    pad_or_trim.zimu_short = True
    fw.pad_or_trim = pad_or_trim
    return True


@contextmanager
def short_windows():
    """Decode with windows padded to the audio's own length on this thread (see SHORT_PAD)."""
    _install_short_padding()
    _short.on = True
    try:
        yield
    finally:
        _short.on = False


@dataclass
class Stats:
    decodings: int = 0
    decode_seconds: float = 0.0
    char_commits: list[tuple[Char, float]] = field(default_factory=list)  # each committed char, when


def _vad_options(threshold: float):
    from faster_whisper.vad import VadOptions

    # Short silences and pads: the pauses between sentences are what the buffer is cut at.
    return VadOptions(threshold=threshold, min_silence_duration_ms=150, speech_pad_ms=100,
                      min_speech_duration_ms=100)


class LiveTranscriber:
    """Feed chunks with `feed`, end with `finish`; both return the pieces committed then.
    `clock`: what `Piece.committed_at` reads (default: seconds since this object was made)."""

    def __init__(self, model, options: LiveOptions | None = None, clock: Callable[[], float] | None = None):
        self.model = model
        self.options = options or LiveOptions()
        started = time.monotonic()
        self.clock = clock or (lambda: time.monotonic() - started)
        self.buffer = np.zeros(0, dtype=np.float32)
        self.offset = 0.0  # stream seconds where the buffer starts
        self.undecoded = 0.0  # seconds fed since the last decoding
        self.agreement = Agreement(self.options.whole_words)
        self.pieces: list[Piece] = []
        self.stats = Stats()
        self._vad = _vad_options(self.options.vad_threshold)

    def warm(self) -> None:
        """Load what the first decoding would otherwise wait for (Silero VAD, jieba and the text tools,
        the model's first pass: seconds on 2 cores) before the first chunk comes; once per model."""
        from app.speech.transcribe import warm_text_tools

        if getattr(self.model, "zimu_live_warm", False):
            return
        warm_text_tools()
        silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
        self.buffer = silence
        self._speech()
        self._decode()
        self.buffer = np.zeros(0, dtype=np.float32)
        self.stats = Stats()
        try:
            self.model.zimu_live_warm = True
        except AttributeError:  # a model object that takes no attributes: warm each time
            pass

    @property
    def received(self) -> float:
        return self.offset + self.buffer.size / SAMPLE_RATE

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.pieces)

    @property
    def tentative(self) -> str:
        return "".join(c.text + c.mark for c in self.agreement.tentative)

    def feed(self, chunk: np.ndarray) -> list[Piece]:
        """Add a chunk; decode when `step` seconds arrived since the last decoding, or at once when
        the speaker has just paused (Silero VAD runs on every chunk; it is cheap)."""
        chunk = to_float32(np.asarray(chunk).reshape(-1))
        self.buffer = np.concatenate([self.buffer, chunk])
        self.undecoded += chunk.size / SAMPLE_RATE
        if self.buffer.size < SAMPLE_RATE // 10:
            return []
        speech = self._speech()
        if self.undecoded < self.options.step and not self._paused(speech):
            return []
        self.undecoded = 0.0
        return self._step(speech, final=False)

    def finish(self) -> list[Piece]:
        """The stream has ended: what is still tentative is decided now."""
        self.undecoded = 0.0
        if self.buffer.size < SAMPLE_RATE // 10:
            return self._pieces(self.agreement.finish(), True)
        return self._step(self._speech(), final=True)

    def _speech(self) -> list[tuple[float, float]]:
        from faster_whisper.vad import get_speech_timestamps

        return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE)
                for s in get_speech_timestamps(self.buffer, self._vad, sampling_rate=SAMPLE_RATE)]

    def _paused(self, speech: list[tuple[float, float]]) -> bool:
        return bool(speech) and self.buffer.size / SAMPLE_RATE - speech[-1][1] >= self.options.end_silence

    def _step(self, speech: list[tuple[float, float]], final: bool) -> list[Piece]:
        length = self.buffer.size / SAMPLE_RATE
        if not speech:
            self.agreement.forget()
            self._cut(self.offset + max(0.0, length - 0.5))  # keep a little: speech may be starting
            return self._pieces([], final)
        hypothesis = self._decode()
        if final or self._paused(speech) or (length > self.options.max_buffer + 5 and not self._committed_in_buffer()):
            # The utterance is over (or the buffer must go): its hypothesis is committed whole, but
            # for a character that starts at the speech's end: the first syllable of the next
            # utterance, heard in part before VAD counts it as speech (他属于这个组他 with the 他 of
            # 他表现出色; the next buffer, cut at the speech's end, says it again).
            if not final:
                hypothesis = before_onset(hypothesis, self.offset + speech[-1][1])
            pieces = self._pieces(self.agreement.finish(hypothesis), True)
            if final or not self._unheard(speech, self.agreement.last_end):
                self._cut(self.offset + min(length, speech[-1][1] + 0.05), clean=True)
            else:
                # The hypothesis stopped seconds before the speech did (Whisper skipped the end of a
                # long buffer): cutting at the speech's end would lose that sentence, so the buffer
                # starts after the committed text and the next decoding hears the rest.
                self._cut(self._between_chars(self.agreement.last_end))
            return pieces
        pieces = self._pieces(self.agreement.insert(hypothesis, self.received - self.options.margin), False)
        if self._skipped(hypothesis, speech):
            # Whisper stopped at the committed text and left the speech after it out (a dense run
            # whose buffer starts with committed context: it said the context again, then ended):
            # decoding the same buffer again says the same, so start it after the committed text.
            self._cut(self._between_chars(self.agreement.last_end))
            return pieces
        self._trim(speech, length)
        return pieces

    def _skipped(self, hypothesis: list[Char], speech: list[tuple[float, float]]) -> bool:
        """The hypothesis adds nothing beyond the committed text, though over UNHEARD seconds of
        speech follow that text in the buffer."""
        return not self.agreement.tentative and \
            self._unheard(speech, max([c.end for c in hypothesis] + [self.agreement.last_end]))

    def _unheard(self, speech: list[tuple[float, float]], heard: float) -> bool:
        """Over UNHEARD seconds of the buffer's speech follow `heard` (stream seconds), past committed
        text in the buffer: Whisper skipped them. (A buffer whose committed text is under 0.5 s
        would not move when cut after it.)"""
        return self._committed_in_buffer() and speech[-1][1] - (heard - self.offset) > UNHEARD

    def _committed_in_buffer(self) -> bool:
        return self.agreement.last_end > self.offset + 0.5

    def _trim(self, speech: list[tuple[float, float]], length: float) -> None:
        """Once the buffer is `trim_after` long, cut in the pause the committed text ends at (so the
        buffer then holds no committed speech); past `max_buffer`, at the last committed character."""
        if length < self.options.trim_after or not self.agreement.committed:
            return
        last = self.agreement.committed[-1]
        reached, began = self.agreement.last_end - self.offset, last.start - self.offset
        centre = (last.start + last.end) / 2 - self.offset
        for before, after in zip(speech, speech[1:]):
            middle = (before[1] + after[0]) / 2
            # The last committed character lies mostly before the pause: one timed to start before
            # it but mostly after it is the next utterance's first (不怕 | 反, 反 timed 119.54-120.16
            # around a pause at 119.83: the buffer cut there said 反 again).
            if centre < middle and reached >= before[1] - OVERLAP:
                self._cut(self.offset + middle, clean=True)
                return
        if length > self.options.max_buffer and reached > 0.5:
            self._cut(self._between_chars(self.offset + reached))
        elif self.options.keep_committed is not None and began - self.options.keep_committed > 0.5:
            # Dense speech: no pause yet. Keep only `keep_committed` seconds of committed speech as
            # context; the characters decoded from it again are left out by time (Agreement.fresh).
            self._cut(self._between_chars(self.offset + began - self.options.keep_committed))

    def _between_chars(self, at: float) -> float:
        """A cut near `at` (stream seconds) that splits no syllable: the boundary between two committed
        characters nearest to it, moved to the quietest 10 ms within 0.1 s. A buffer that starts
        inside a syllable is decoded with a wrong first character (燕窝 cut in 燕 came back 椰窝)."""
        chars = [c for c in self.agreement.committed if c.start >= self.offset]
        bounds = [(a.end + b.start) / 2 for a, b in zip(chars, chars[1:])]
        if bounds:
            at = min(bounds, key=lambda t: abs(t - at))
        frame = SAMPLE_RATE // 100
        low = max(0, int((at - self.offset - 0.1) * SAMPLE_RATE))
        high = min(self.buffer.size, int((at - self.offset + 0.1) * SAMPLE_RATE))
        if high - low < 2 * frame:
            return at
        window = self.buffer[low:high - (high - low) % frame].reshape(-1, frame)
        quietest = int(np.argmin((window.astype(np.float64) ** 2).sum(axis=1)))
        return self.offset + (low + quietest * frame + frame // 2) / SAMPLE_RATE

    def _cut(self, at: float, clean: bool = False) -> None:
        """Start the buffer at `at`. `clean`: in a pause all committed speech is before (VAD says so):
        the committed text ends there whatever its timestamps say."""
        drop = int(round((at - self.offset) * SAMPLE_RATE))
        if drop <= 0:
            return
        self.buffer = self.buffer[drop:]
        self.offset += drop / SAMPLE_RATE
        if clean:
            self.agreement.cut(self.offset)

    def prompt(self) -> str:
        """The committed text before the buffer (its last `prompt_chars` characters)."""
        if self.options.prompt_chars <= 0:
            return ""
        before = [c for c in self.agreement.committed if c.end <= self.offset + OVERLAP]
        return "".join(c.text + c.mark for c in before[-self.options.prompt_chars:])

    def _decode(self) -> list[Char]:
        started = time.perf_counter()
        o = self.options
        chars: list[Char] = []
        with short_windows():
            segments, _ = self.model.transcribe(
                self.buffer, language=o.language, task="transcribe", beam_size=o.beam_size, word_timestamps=True,
                initial_prompt=self.prompt() or None, vad_filter=False, temperature=list(o.temperature),
                no_speech_threshold=NO_SPEECH_PROB, compression_ratio_threshold=MAX_COMPRESSION_RATIO,
                log_prob_threshold=LOW_LOGPROB, condition_on_previous_text=False,
                max_new_tokens=min(MAX_NEW_TOKENS, int(20 + o.tokens_per_second * self.buffer.size / SAMPLE_RATE)))
            for segment in segments:  # lazy: decoding happens here, inside short_windows
                if drop_segment(segment):
                    continue
                chars += chars_of(collapse_repeats(strip_known_hallucinations(timed_words(segment))), self.offset)
        chars = collapse_char_runs(chars)  # a loop spread over several words
        self.stats.decodings += 1
        self.stats.decode_seconds += time.perf_counter() - started
        if DEBUG:
            print(f"decode {self.offset:.2f}+{self.buffer.size / SAMPLE_RATE:.2f}s in "
                  f"{time.perf_counter() - started:.2f}s: {''.join(c.text for c in chars)}", file=sys.stderr)
        return chars

    def _pieces(self, chars: list[Char], ended: bool) -> list[Piece]:
        """The committed characters as a piece; at an utterance's end a sentence mark if none ends it."""
        now = self.clock()
        text = "".join(c.text + c.mark for c in chars)
        if ended:
            whole = self.text + text
            if whole and whole[-1] not in MARKS:
                sentence = whole[max(whole.rfind(m) for m in SENTENCE_MARKS) + 1:]
                text += sentence_mark(sentence)
        if not text:
            return []
        self.stats.char_commits += [(c, now) for c in chars]
        if DEBUG and chars:
            print(f"commit at {now:.2f}: {text} [{chars[0].start:.2f}-{chars[-1].end:.2f}] last_end "
                  f"{self.agreement.last_end:.2f}", file=sys.stderr)
        end = chars[-1].end if chars else (self.pieces[-1].end if self.pieces else self.received)
        piece = Piece(text, chars[0].start if chars else end, end, now)
        self.pieces.append(piece)
        return [piece]


def replay(transcriber: LiveTranscriber, audio: np.ndarray, realtime: bool, chunk: float = 0.5,
           cpu_clock: Callable[[], float] | None = None) -> Iterator[list[Piece]]:
    """Feed a file as a microphone would, `chunk` seconds at a time, yielding what each feed commits.
    `realtime`: audio arrives at the pace it was spoken (what decoding could not keep up with arrives
    together at the next feed) and `committed_at` is wall time since the first sample; otherwise
    chunks follow each other as fast as decoding goes and `committed_at` is the audio time received.
    `cpu_clock` (time.process_time; not with `realtime`): real time simulated on the CPU time this
    process spends: a moment is when the audio arrived plus the CPU time the feeds since took, and
    what arrived meanwhile is fed together, as in real time on a machine where the decoding has its
    core to itself (wall time on a machine shared with other work measures that work too)."""
    if realtime and cpu_clock is not None:
        raise ValueError("replay: realtime and cpu_clock are two clocks; pass one")
    audio = to_float32(np.asarray(audio).reshape(-1))
    step = max(1, int(chunk * SAMPLE_RATE))
    started = time.monotonic()
    simulated = {"now": 0.0, "cpu": 0.0}  # the simulated clock at the feed's start, the CPU clock then
    if realtime:
        transcriber.clock = lambda: time.monotonic() - started
    elif cpu_clock is not None:
        transcriber.clock = lambda: simulated["now"] + cpu_clock() - simulated["cpu"]
    else:
        transcriber.clock = lambda: transcriber.received
    fed = 0
    while fed < audio.size:
        due = min(audio.size, fed + step)
        if realtime:
            wait = due / SAMPLE_RATE - (time.monotonic() - started)
            if wait > 0:
                time.sleep(wait)
            due = min(audio.size, max(due, int((time.monotonic() - started) * SAMPLE_RATE)))
        elif cpu_clock is not None:
            now = max(simulated["now"], due / SAMPLE_RATE)  # idle until the chunk has arrived
            due = min(audio.size, max(due, int(now * SAMPLE_RATE)))
            simulated.update(now=now, cpu=cpu_clock())
        pieces = transcriber.feed(audio[fed:due])
        if cpu_clock is not None:  # before the caller's own work on what is yielded
            simulated.update(now=transcriber.clock(), cpu=cpu_clock())
        yield pieces
        fed = due
    yield transcriber.finish()
