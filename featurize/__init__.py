"""Feature pipeline on CPU: Mandarin speech corpora -> compact, resumable Whisper training shards.

    python -m featurize --source cv:../shared/data/zh-synth --out out/zh-synth

Modules, one concern each:
  cli          options (dataclasses + HfArgumentParser) and the one-line errors
  sources      the --source syntax; Common Voice folders, Hugging Face datasets, manifests
  audio_codec  bytes <-> 16 kHz mono float32 (libsndfile, PyAV fallback, soxr); Opus/FLAC encoding
  augment      speed perturbation and additive noise, seeded per clip
  labels       Whisper tokenizer (offline from tokenizer.json) and label ids
  features     WhisperFeatureExtractor log-mel and its unpadded float16 form
  pipeline     one shard: filter, label, augment, store
  shards       Parquet shard files: names, schema, atomic writes, footer stats
  run          planning, resume, --num-proc / --num-shards fan-out, progress
  manifest     manifest.json, dataset card, closing summary
  hub          --push-to-hub
  reader       training side: shards -> input_features (80 x 3000) + labels, and the collator
See featurize/README.md.
"""
