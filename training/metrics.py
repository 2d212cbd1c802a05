"""CER (the main metric) and WER on jieba words, both after app.language.text's normalisation.

CER is `app.language.text.cer`, the number every other part of the project reports. WER has no single
meaning for Chinese: here both sides are normalised the same way (`normalize_for_cer`) and then
segmented by `app.language.text.split_words` (jieba), so a wrong character usually costs a whole word.
"""

from __future__ import annotations

import numpy as np

from app.language.text import cer, normalize_for_cer, split_words


def wer_jieba(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER over jieba words of the normalised texts; empty references are skipped like `cer`."""
    import jiwer

    pairs = [(normalize_for_cer(r), normalize_for_cer(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        raise ValueError("no non-empty reference to score")
    # jiwer splits on spaces; an empty hypothesis must stay one (empty) sentence, not vanish.
    return jiwer.wer([" ".join(split_words(r)) for r, _ in pairs], [" ".join(split_words(h)) for _, h in pairs])


def score(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    return {"cer": cer(references, hypotheses), "wer": wer_jieba(references, hypotheses)}


class ComputeMetrics:
    """Seq2SeqTrainer's compute_metrics: generated ids and label ids → {"cer", "wer"}.

    Labels come padded with -100 (ignored by the loss); they become pad tokens before decoding.
    Generated ids may carry timestamp tokens; skip_special_tokens drops those and the prefix.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, prediction) -> dict[str, float]:
        predictions, labels = prediction.predictions, prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        pad = self.tokenizer.pad_token_id
        predictions = np.where(predictions < 0, pad, predictions)
        labels = np.where(labels < 0, pad, labels)
        hypotheses = self.tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = self.tokenizer.batch_decode(labels, skip_special_tokens=True)
        return score(references, hypotheses)
