"""Layer 2, language: Chinese text with no audio and no recogniser: normalisation and CER, pinyin,
CC-CEDICT and its glosses, the text translators (Google, LLM), subtitle cues, their rules and the
subtitle files. Imports only app.base."""
