"""Zimu: Mandarin speech into Simplified hanzi + pinyin + English subtitles for learners."""

__version__ = "0.1.0"
