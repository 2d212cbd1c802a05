"""The many-voice corpus command: Common Voice layout, splits kept apart, zh-synth's held-out sentences never spoken."""

from __future__ import annotations

import csv
import subprocess
import sys

from app.evaluation.spoken_corpus import sentences_by_split, text_split, zh_synth_splits
from featurize.labels import parse_timing
from tests.conftest import DATA, ROOT


def read(folder, split):
    with open(folder / f"{split}.tsv", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_hsk_sentences_keep_zh_synths_split_and_held_out_ones_are_never_used(zh_synth, tmp_path):
    from app.practice.assess import sentence_bank

    where = zh_synth_splits(DATA)
    # A text the bank holds twice may be in a split under one id and held out under the other: the held-out
    # texts are those with no id in any split.
    in_splits = {e["chinese"] for e in sentence_bank() if e["id"] in where}
    held_out = {e["chinese"] for e in sentence_bank()} - in_splits
    assert held_out  # the bank has sentences in none of zh-synth's splits
    extra = tmp_path / "more.txt"
    extra.write_text("今天下午三点开会。\n他说了2次。\nhello\n", encoding="utf-8")
    splits = sentences_by_split(DATA, extra)
    everything = [s for split in splits.values() for s in split]
    assert len(everything) == len(set(everything))  # no sentence in two splits
    assert not held_out & set(everything)
    for split, texts in splits.items():
        ids = {}
        for e in sentence_bank():
            ids.setdefault(e["chinese"], set()).add(where.get(e["id"]))
        assert all(split in ids[t] for t in texts if t in ids)
    assert "今天下午三点开会。" in splits[text_split("今天下午三点开会。")] and "hello" not in everything


def test_corpus_command_writes_common_voice_layout_with_eval_voices_apart(voices, model, zh_synth, tmp_path):
    from app.language.text import cer
    from app.speech.audio import load_audio

    out = tmp_path / "corpus"
    command = [sys.executable, "-m", "app.evaluation.spoken_corpus", str(out), "--zh-synth", str(DATA),
               "--voices", "zm_yunxi", "--eval-voices", "zf_xiaoxiao", "--per-split", "4,2,2",
               "--join", "1-2", "--gap", "0.2-0.3"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {split: read(out, split) for split in ("train", "dev", "test")}
    assert {r["client_id"] for r in rows["train"]} == {"zm_yunxi"}
    assert {r["client_id"] for split in ("dev", "test") for r in rows[split]} == {"zf_xiaoxiao"}
    assert sum(len(r) for r in rows.values()) >= 4  # 8 sentences, 1-2 per clip
    references, heard = [], []
    for split, split_rows in rows.items():
        for r in split_rows:
            audio = load_audio(out / "clips" / r["path"])
            timing = parse_timing(r["timing"])  # every sentence placed, in order, inside the clip
            assert sum(n for _, _, n in timing) == len(r["sentence"]) and timing[-1][1] <= audio.size / 16000 + 0.05
            segments, _ = model.transcribe(audio, language="zh", beam_size=5)
            references.append(r["sentence"])
            heard.append("".join(s.text for s in segments))
    assert cer(references, heard) < 0.2, list(zip(references, heard))

    # Interrupted and run again: the clips already written stay as they are, the missing one is spoken
    # again under the same name, and the tables come out the same.
    clips = sorted((out / "clips").iterdir())
    lost, kept = clips[0], clips[1:]
    stamps = {c: c.stat().st_mtime_ns for c in kept}
    tables = {split: (out / f"{split}.tsv").read_text(encoding="utf-8") for split in rows}
    lost.unlink()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert lost.is_file() and {c: c.stat().st_mtime_ns for c in kept} == stamps
    assert {split: (out / f"{split}.tsv").read_text(encoding="utf-8") for split in rows} == tables
    assert not list((out / "clips").glob("*.part.mp3"))


def test_corpus_command_without_sentences_is_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "app.evaluation.spoken_corpus", str(tmp_path / "c"),
                             "--voices", "zm_yunxi"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.strip().startswith("error:") and len(result.stderr.strip().splitlines()) == 1
