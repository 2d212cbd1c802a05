"""Shard files: names, the row schema, atomic writes and the stats each shard carries in its footer.

    OUT/data/{split}-{index:05d}-of-{count:05d}.parquet

is the layout `datasets.load_dataset(OUT)` and the Hub read as splits. A shard is written to a
hidden temporary file beside its final name, flushed to disk and moved into place with
os.replace, so a final name always holds a complete shard: a run killed at any moment leaves
complete shards plus at most one temporary file per worker, which the rerun overwrites.

Each shard's Parquet footer carries the fingerprint of the options that made it and its own
statistics (kept, dropped by reason, seconds of audio, failed clips), so resuming and the
closing manifest need only the footers, never the rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from app.speech.audio import SAMPLE_RATE
from app.base.files import atomic_path

STATS_KEY = b"featurize"
ROW_GROUP_ROWS = 100  # small row groups: streaming readers and the Hub viewer fetch little at a time


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def schema(store: str, sampling_rate: int = SAMPLE_RATE) -> pa.Schema:
    """Columns of one row. `audio` mode keeps compressed audio (log-mel computed at training time),
    `logmel` mode keeps float16 log-mel (n_mels, num_frames) without Whisper's 30 s padding."""
    from datasets import Audio, Features, List, Value

    columns = {
        "id": Value("string"),  # clip key + '#' + copy number, unique within a split
        "source": Value("string"),  # the --source it came from, as typed
        "text": Value("string"),  # app.language.text.normalize_label form
        "labels": List(Value("int32")),  # Whisper token ids, prefix and <|endoftext|> included
        # The clip timed sentence by sentence, <|start|> text <|end|> each, when its table gave a timing;
        # else empty (training then times the clip as one segment).
        "timed_labels": List(Value("int32")),
        "duration": Value("float32"),  # seconds, after augmentation
        "augment": Value("string"),  # what augmentation did, e.g. "speed=1.1,noise=white@12.0dB"
    }
    if store == "audio":
        columns["audio"] = Audio(sampling_rate=sampling_rate, decode=False)
    else:
        columns["log_mel"] = Value("binary")  # little-endian float16, C order, shape (n_mels, num_frames)
        columns["num_frames"] = Value("int32")
    return Features(columns).arrow_schema


def write_shard(path: Path, rows: dict[str, list], table_schema: pa.Schema, stats: dict) -> None:
    """Write atomically (app.base.files: hidden temporary beside it, fsync, os.replace)."""
    table = pa.Table.from_pydict(rows, schema=table_schema)
    metadata = dict(table_schema.metadata or {})
    metadata[STATS_KEY] = json.dumps(stats, ensure_ascii=False).encode()
    table = table.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def read_stats(path: Path) -> dict | None:
    """The footer stats of a finished shard, or None when the file is missing or not ours."""
    try:
        metadata = pq.read_schema(path).metadata or {}
        stats = json.loads(metadata[STATS_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None
    stats["bytes"] = path.stat().st_size
    return stats
