"""Layer 4, practice (beside study): pronunciation practice: syllable alignment and the score, pitch
and tones. Imports the layers below (base, language, speech); not app.study."""
