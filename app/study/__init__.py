"""Layer 4, study: what a learner takes from a transcript: the study player's data, Anki decks and
CSV, the subtitles burned into a video. Imports the layers below (base, language, speech)."""
