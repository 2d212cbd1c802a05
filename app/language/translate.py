"""Text translation of Chinese sentences into English, with no recogniser: Google Translate
(deep-translator), any OpenAI-compatible LLM, and the sentence grouping and sharing they and
Whisper's English (app.speech.english) use. The dispatcher over all sources is app.speech.english."""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from app.language.gloss import NOT_LATIN
from app.language.punctuation import sentences
from app.language.subtitles import Cue, Word, hanzi_count

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


# --- Sentences -----------------------------------------------------------------------------------
# The unit every source translates is one sentence of the transcript, as the punctuation module ends
# it (app.language.punctuation.sentences): not a cue, not a run of cues. Cues break at sentence
# ends first, but a cue may still hold the end of one sentence and the start of the next (an orphan
# "好。" joined to its neighbour), and a long sentence runs over several cues. So a sentence is a list
# of pieces, the part of each cue it covers; its English is shared over those pieces
# (`share_over_cues`) and a cue shows its pieces' English in order (`show_english`).


@dataclass
class Sentence:
    """One sentence of the transcript over the cues it runs on: (cue, its words in this sentence)."""

    pieces: list[tuple[Cue, list[Word]]]

    @property
    def cues(self) -> list[Cue]:
        return [cue for cue, _ in self.pieces]

    @property
    def words(self) -> list[Word]:
        return [w for _, words in self.pieces for w in words]

    @property
    def hanzi(self) -> str:
        """The sentence's text, its marks kept: what a translator receives."""
        return "".join(w.text for w in self.words)

    def _spoken(self) -> list[Word]:
        return [w for w in self.words if not w.is_punct] or self.words

    @property
    def start(self) -> float:
        return self._spoken()[0].start

    @property
    def end(self) -> float:
        return self._spoken()[-1].end


def sentences_of(cues: list[Cue]) -> list[Sentence]:
    """The transcript's sentences (where the punctuation module ends them) over the cues."""
    out: list[Sentence] = []
    for indices in sentences([cue.words for cue in cues]):
        sentence = Sentence([])
        for c, w in indices:
            if not sentence.pieces or sentence.pieces[-1][0] is not cues[c]:
                sentence.pieces.append((cues[c], []))
            sentence.pieces[-1][1].append(cues[c].words[w])
        out.append(sentence)
    return out


def english_problem(english: str, hanzi: str) -> str | None:
    """Why a line of Whisper's English can't be shown to a learner, or None when it can."""
    from faster_whisper.transcribe import get_compression_ratio

    if not english.strip():
        return "empty"
    if NOT_LATIN.search(english):
        return "not English"
    if len(english) > 20 and get_compression_ratio(english) > 2.4:
        return "repeats itself"
    if len(english) > 40 + 8 * len(hanzi):
        return "far longer than the Chinese"
    return None



SHORT_ENGLISH_PER_HANZI = 2.0


def english_too_short(english: str, hanzi: str) -> bool:
    return len(hanzi) >= 6 and len(english) < SHORT_ENGLISH_PER_HANZI * len(hanzi)


def share_over_cues(english: str, sentence: Sentence) -> list[str]:
    """A sentence's English over its pieces (the part of each cue it covers), in order, split at spaces
    in proportion to each piece's characters; a sentence on one cue, or English too short to split,
    is shown whole on each of its cues."""
    words = english.split()
    pieces = sentence.pieces
    if len(pieces) == 1 or len(words) < len(pieces):
        return [english] * len(pieces)
    lengths = [max(1, hanzi_count("".join(w.text for w in ws if not w.is_punct))) for _, ws in pieces]
    total, done, at, shares = sum(lengths), 0, 0, []
    for i, length in enumerate(lengths):
        done += length
        stop = len(words) if i == len(pieces) - 1 else round(len(words) * done / total)
        shares.append(" ".join(words[at:stop]))
        at = stop
    return shares


def show_english(sentences: list[Sentence], english: list[list[str]]) -> None:
    """Each cue's English line: the English of its pieces (`english[n]`: one string per piece of
    sentence n), in order, joined by a space."""
    lines: dict[int, list[str]] = {}
    for sentence, shares in zip(sentences, english):
        for (cue, _), share in zip(sentence.pieces, shares):
            lines.setdefault(id(cue), [])
            if share:
                lines[id(cue)].append(share)
    for sentence in sentences:
        for cue in sentence.cues:
            cue.english = " ".join(lines.get(id(cue), []))


def google_translate(cues: list[Cue], language: str | None) -> str | None:
    """Google's English, a sentence at a time, shown over the sentence's cues; returns why it failed
    (nothing filled in then), or None."""
    from deep_translator import GoogleTranslator

    source = {"zh": "zh-CN", None: "auto"}.get(language, language)
    groups = sentences_of(cues)
    try:
        translator = GoogleTranslator(source=source, target="en")
        texts = [g.hanzi for g in groups]
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
    show_english(groups, [share_over_cues(english.strip(), group) for group, english in zip(groups, results)])
    return None


# --- An LLM: any OpenAI-compatible chat endpoint ------------------------------------------------
# Sentences (`sentences_of`) go LLM_BATCH at a time, each request also showing the
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
