"""manifest.json and the closing summary: counts, hours, bytes, bytes per hour, and what made them.

The manifest is what the training side reads first: which splits and shards exist, which
tokenizer and feature extractor the labels and log-mels belong to, and how the storage compares
with the usual 30 s padded float32 log-mel (80 x 3000 x 4 bytes = 0.96 MB per clip).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

from app.speech.audio import SAMPLE_RATE
from app.base.files import write_atomic
from featurize.features import PADDED_FLOAT32_BYTES
from featurize.pipeline import FORMAT

MANIFEST_NAME = "manifest.json"
CARD_NAME = "README.md"


NAMED_PER_REASON = 50  # clip names kept per drop reason in manifest.json
NAMED_IN_SUMMARY = 5  # ... and printed in the closing summary


def _totals(stats: list[dict]) -> dict:
    dropped: Counter = Counter()
    named: dict[str, list[str]] = {}
    for s in stats:
        dropped.update(s["dropped"])
        for reason, names in s.get("dropped_clips", {}).items():  # absent in shards of older versions
            listed = named.setdefault(reason, [])
            listed.extend(names[: NAMED_PER_REASON - len(listed)])
    rows = sum(s["kept"] for s in stats)
    seconds = sum(s["audio_seconds"] for s in stats)
    size = sum(s.get("bytes", 0) for s in stats)
    hours = seconds / 3600
    padded = rows * PADDED_FLOAT32_BYTES
    return {
        "shards": len(stats),
        "clips_read": sum(s["clips_read"] for s in stats),
        "sampled_out": sum(s["sampled_out"] for s in stats),
        "rows": rows,
        "dropped": dict(sorted(dropped.items())),
        "dropped_clips": dict(sorted(named.items())),
        "audio_seconds": round(seconds, 3),
        "hours": round(hours, 6),
        "bytes": size,
        "bytes_per_hour": round(size / hours) if hours else None,
        "padded_float32_bytes": padded,
        "fraction_of_padded_float32": round(size / padded, 5) if padded else None,
    }


def summarise(all_mine: dict[str, dict], done_now: dict[str, dict], elapsed: float) -> dict:
    """This process's share: totals over its shards, and the speed of the shards it did now."""
    mine = _totals(list(all_mine.values()))
    now = _totals(list(done_now.values()))
    failed = [f for s in all_mine.values() for f in s.get("failed", [])]
    return {
        **mine,
        "shards_done_now": now["shards"],
        "clips_done_now": now["clips_read"],
        "seconds": round(elapsed, 2),
        "clips_per_second": round(now["clips_read"] / elapsed, 2) if elapsed and now["clips_read"] else None,
        "failed": failed,
    }


def format_summary(result: dict) -> str:
    mb = result["bytes"] / 1e6
    lines = [
        f"featurize: {result['rows']} rows kept from {result['clips_read']} clips in {result['shards']} shards "
        f"({result['shards_done_now']} written now, {result['shards'] - result['shards_done_now']} already there)",
    ]
    if result["sampled_out"]:
        lines.append(f"  left out by @weight: {result['sampled_out']}")
    dropped = result["dropped"]
    lines.append("  dropped: " + (", ".join(f"{k} {v}" for k, v in dropped.items()) if dropped else "none"))
    # Each reason with the clips it took, so a refused manifest row is seen, not just counted.
    for reason in dropped:
        names = result.get("dropped_clips", {}).get(reason, [])
        if names:
            more = len(names) - NAMED_IN_SUMMARY
            lines.append(f"    {reason}: " + "; ".join(names[:NAMED_IN_SUMMARY])
                         + (f"; ... {more} more named in manifest.json" if more > 0 else ""))
    per_hour = f"{result['bytes_per_hour'] / 1e6:.2f} MB/h" if result["bytes_per_hour"] else "-"
    fraction = result["fraction_of_padded_float32"]
    lines.append(f"  audio: {result['hours']:.3f} h; stored {mb:.2f} MB = {per_hour}"
                 + (f" = 1/{1 / fraction:.0f} of padded float32 log-mel" if fraction else ""))
    speed = result["clips_per_second"]
    lines.append(f"  time: {result['seconds']:.1f} s" + (f", {speed:.1f} clips/s" if speed else ""))
    if result.get("manifest"):
        lines.append(f"  manifest: {result['manifest']}")
    elif not result.get("complete"):
        lines.append("  other shards still missing (other --shard-index jobs?): manifest.json not written yet")
    return "\n".join(lines)


def write(out: Path, planned, all_stats: dict[str, dict], featurizer, specs) -> Path:
    """Write manifest.json (and a dataset card for the Hub) atomically; returns its path."""
    settings = featurizer.settings
    splits: dict[str, list[str]] = {}
    for p in planned:
        splits.setdefault(p.unit.split, []).append(p.name)
    failed = [f for s in all_stats.values() for f in s.get("failed", [])]
    body = {
        "format": FORMAT,
        "fingerprint": featurizer.fingerprint,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "store": settings.store,
        "audio_codec": settings.audio_codec if settings.store == "audio" else None,
        "opus_bitrate": settings.opus_bitrate if settings.store == "audio" else None,
        "sampling_rate": SAMPLE_RATE,
        "model": settings.model or "embedded:whisper-base",
        "tokenizer": {"fingerprint": settings.tokenizer, "language": settings.language, "task": settings.task,
                      **featurizer.labels.describe()},
        "feature_extractor": featurizer.extractor.to_dict(),
        "max_duration_in_seconds": settings.max_duration,
        "sources": [spec.describe() for spec in specs],
        "augment": {**settings.augment.describe(), "splits": list(settings.augment_splits), "seed": settings.seed}
        if settings.augment.active else None,
        "splits": {split: {**_totals([all_stats[n] for n in names]), "files": [f"data/{n}" for n in names]}
                   for split, names in splits.items()},
        "total": _totals(list(all_stats.values())),
        "failed": failed,
    }
    write_atomic(out / MANIFEST_NAME, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    write_atomic(out / CARD_NAME, _card(body))
    return out / MANIFEST_NAME


def _card(body: dict) -> str:
    stored = "compressed audio (`audio`: {bytes, path}, log-mel computed at training time)" \
        if body["store"] == "audio" else "float16 log-mel without 30 s padding (`log_mel`, `num_frames`)"
    # YAML front matter: the Hub (and load_dataset) read the splits from it instead of guessing.
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in body["splits"]:
        lines += [f"  - split: {split}", f"    path: data/{split}-*"]
    lines += ["---", "", f"# Whisper training shards ({body['model']}, {body['tokenizer']['language']})", "",
             f"Made by Zimu's `python -m featurize`. Rows hold {stored}, `text` (normalised label), "
             "`labels` (Whisper token ids), `duration`. Load with `featurize.reader.load_split`; "
             "see manifest.json for counts and the tokenizer.", "",
             "| split | rows | hours | MB |", "|---|---|---|---|"]
    for split, t in body["splits"].items():
        lines.append(f"| {split} | {t['rows']} | {t['hours']:.2f} | {t['bytes'] / 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def read(out: str | os.PathLike) -> dict:
    with open(Path(out) / MANIFEST_NAME, encoding="utf-8") as f:
        return json.load(f)
