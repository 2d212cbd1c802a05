"""Fine-tune Whisper on featurize's shards (Seq2SeqTrainer), evaluate with CER, export to CTranslate2.

See training/README.md: `python -m training`, `python -m training.export`, `python -m training.convert`.
"""
