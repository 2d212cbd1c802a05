"""Whisper training labels: a sentence -> normalised text -> the token ids the decoder learns.

This module owns the Whisper tokenizer as training uses it: `load_tokenizer` repairs what CTranslate2
folders ship (training.convert builds its processor from it too), and `timestamped` is the one
layout of a timed label.

The text form is `app.language.text.normalize_label` (Simplified, width unified, punctuation kept), the
one owner of Chinese normalisation. The ids are exactly what Hugging Face's Whisper fine-tuning
recipe feeds the model: `tokenizer(text).input_ids` after `set_prefix_tokens(language, task)`,
i.e. <|startoftranscript|><|zh|><|transcribe|><|notimestamps|> text <|endoftext|>.
With `timestamps`, the prefix loses <|notimestamps|> and the clip becomes one timed segment:
<|startoftranscript|><|zh|><|transcribe|><|0.00|> text <|end time|><|endoftext|>.
A clip whose table says where each sentence is (a `timing` column, as the many-voice corpus writes)
gets one segment per sentence instead, <|start|> sentence <|end|> each, as Whisper itself writes
segments: a model trained on several sentences as one segment would learn to run them together.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from app.base.errors import UserError, first_line
from app.speech.model import describe_model, embedded_model_dir, is_embedded
from app.language.text import normalize_label

# The decoder's position table (max_target_positions) in every Whisper size.
DECODER_MAX_TOKENS = 448
TIMESTAMP_STEP = 0.02
TIMESTAMP_COUNT = 1501  # <|0.00|> ... <|30.00|>


def timestamped(prefix: list[int], body: list[int], duration: float, first_timestamp: int, eot: int) -> list[int]:
    """A clip as one timed segment: prefix <|0.00|> text <|end time|> <|endoftext|> (end capped at 30 s)."""
    end = first_timestamp + min(round(duration / TIMESTAMP_STEP), TIMESTAMP_COUNT - 1)
    return [*prefix, first_timestamp, *body, end, eot]


def timed_segments(prefix: list[int], segments: list[tuple[float, float, list[int]]], first_timestamp: int,
                   eot: int) -> list[int]:
    """Several timed segments: prefix (<|start|> text <|end|>)... <|endoftext|> (times capped at 30 s)."""
    def token(seconds: float) -> int:
        return first_timestamp + min(max(round(seconds / TIMESTAMP_STEP), 0), TIMESTAMP_COUNT - 1)

    out = list(prefix)
    for start, end, body in segments:
        out += [token(start), *body, token(end)]
    return [*out, eot]


def parse_timing(timing: str) -> list[tuple[float, float, int]]:
    """"0.00-2.31:12 2.55-4.80:9" → [(start s, end s, characters of the sentence column)]; [] when empty
    or malformed (the clip is then timed as one segment)."""
    out = []
    for part in timing.split():
        span, _, chars = part.partition(":")
        start, _, end = span.partition("-")
        try:
            out.append((float(start), float(end), int(chars)))
        except ValueError:
            return []
    ordered = all(a[1] <= b[0] for a, b in zip(out, out[1:])) and all(0 <= s <= e and n > 0 for s, e, n in out)
    return out if ordered else []


def _starts(parts: list[tuple[float, float, int]]) -> list[tuple[int, int]]:
    """(first character, characters) of each timed sentence in the sentence column."""
    out, at = [], 0
    for _, _, n in parts:
        out.append((at, n))
        at += n
    return out


def _tokenizer_file(model: str | None) -> Path | None:
    """tokenizer.json of a CTranslate2 folder (no HF tokenizer_config.json), else None."""
    if is_embedded(model):
        return embedded_model_dir() / "tokenizer.json"
    path = Path(model).expanduser()
    if path.is_dir() and (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        return path / "tokenizer.json"
    return None


def load_tokenizer(model: str | None):
    """WhisperTokenizerFast for `model`: empty = the embedded model, a folder, or a Hub id (online)."""
    from transformers import AddedToken, WhisperTokenizerFast

    tokenizer_file = _tokenizer_file(model)
    try:
        if tokenizer_file is not None:
            tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_file))
        else:
            folder = Path(model).expanduser()
            if not folder.exists() and "/" not in model:
                raise UserError(f"--model {model}: no such folder, and not a Hub id like openai/whisper-base")
            tokenizer = WhisperTokenizerFast.from_pretrained(str(folder) if folder.exists() else model)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"could not load the Whisper tokenizer of {describe_model(model)}: "
                        f"{first_line(exc, 160)}") from exc
    # A bare tokenizer.json marks <|zh|>, <|transcribe|>, ... special but does not list them as
    # additional special tokens; HF's Whisper code derives timestamp_begin from that list.
    listed = set(tokenizer.all_special_ids)
    unlisted = [t for i, t in sorted(tokenizer.added_tokens_decoder.items()) if t.special and i not in listed]
    if unlisted:
        tokenizer.add_special_tokens({"additional_special_tokens": unlisted})
    # CTranslate2 conversions ship tokenizer.json without the 1501 timestamp tokens that the model's
    # vocabulary (51865) ends with; add them so their ids line up with the model's output layer.
    first_timestamp = tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1
    if tokenizer.convert_tokens_to_ids("<|0.00|>") in (None, tokenizer.unk_token_id):
        if len(tokenizer) != first_timestamp:
            raise UserError(f"tokenizer of {describe_model(model)} has an unexpected layout ({len(tokenizer)} tokens)")
        tokenizer.add_tokens([AddedToken(f"<|{i * TIMESTAMP_STEP:.2f}|>", special=False, normalized=False)
                              for i in range(TIMESTAMP_COUNT)])
    if tokenizer.convert_tokens_to_ids("<|0.00|>") != first_timestamp:
        raise UserError(f"tokenizer of {describe_model(model)}: timestamp tokens do not follow <|notimestamps|>")
    return tokenizer


def tokenizer_fingerprint(model: str | None) -> str:
    """sha256 of the tokenizer.json the labels come from (or the Hub id when there is no local file)."""
    tokenizer_file = _tokenizer_file(model)
    if tokenizer_file is None and model and (Path(model).expanduser() / "tokenizer.json").is_file():
        tokenizer_file = Path(model).expanduser() / "tokenizer.json"
    if tokenizer_file is None:
        return f"hub:{model}"
    with open(tokenizer_file, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


class LabelMaker:
    """Sentence -> (normalised text, label ids), checked to decode back to the text."""

    def __init__(self, tokenizer, language: str = "zh", task: str = "transcribe", timestamps: bool = False):
        self.tokenizer = tokenizer
        self.timestamps = timestamps
        tokenizer.set_prefix_tokens(language=language, task=task, predict_timestamps=timestamps)
        special = ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>"]
        if not timestamps:
            special.append("<|notimestamps|>")
        self.prefix = tokenizer.convert_tokens_to_ids(special)
        self.eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.first_timestamp = tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1
        # The tokenizer's own post-processor (what the HF recipe calls) must add exactly this prefix.
        probe = tokenizer("你好").input_ids
        if probe[: len(self.prefix)] != self.prefix or probe[-1] != self.eot:
            raise UserError(
                f"tokenizer prefix {tokenizer.convert_ids_to_tokens(probe[:4])} is not {special}: "
                f"is '{language}' a Whisper language code?"
            )

    def text(self, sentence: str | None) -> str:
        return normalize_label(sentence or "").strip()

    def ids(self, text: str, duration: float) -> list[int]:
        if not self.timestamps:
            return self.tokenizer(text).input_ids
        body = self.tokenizer(text, add_special_tokens=False).input_ids
        return timestamped(self.prefix, body, duration, self.first_timestamp, self.eot)

    def timed_ids(self, sentence: str, timing: str, scale: float = 1.0) -> list[int]:
        """The clip timed sentence by sentence from its `timing` (times × `scale`, e.g. after speed
        perturbation), with the timestamped prefix; [] when there is no timing, it does not cover the
        sentence, or the sentences' label texts do not add up to the whole clip's."""
        parts = parse_timing(timing)
        if not parts or sum(n for _, _, n in parts) != len(sentence or ""):
            return []
        pieces = [self.text(sentence[at:at + n]) for at, n in _starts(parts)]
        if not all(pieces) or "".join(pieces) != self.text(sentence):
            return []
        segments = [(start * scale, end * scale, self.tokenizer(piece, add_special_tokens=False).input_ids)
                    for (start, end, _), piece in zip(parts, pieces)]
        prefix = [t for t in self.prefix if t != self.first_timestamp - 1]  # without <|notimestamps|>
        ids = timed_segments(prefix, segments, self.first_timestamp, self.eot)
        return ids if len(ids) <= DECODER_MAX_TOKENS else []

    def decodes_back(self, ids: list[int], text: str) -> bool:
        """Prefix present, <|endoftext|> last, and the text tokens decode to exactly `text`."""
        if ids[: len(self.prefix)] != self.prefix or ids[-1] != self.eot:
            return False
        body = [i for i in ids[len(self.prefix) : -1] if i < self.first_timestamp]
        return self.tokenizer.decode(body, skip_special_tokens=True, clean_up_tokenization_spaces=False) == text

    def describe(self) -> dict:
        return {
            "prefix_ids": self.prefix,
            "prefix_tokens": self.tokenizer.convert_ids_to_tokens(self.prefix),
            "eot_id": self.eot,
            "timestamps": self.timestamps,
            "vocab_size": len(self.tokenizer),
            "max_label_tokens": DECODER_MAX_TOKENS,
        }
