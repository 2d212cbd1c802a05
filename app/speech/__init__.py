"""Layer 3, speech: audio in and out, video links, Whisper model resolution, the decoding paths and their
guards, Whisper's own English, and speech synthesis. Imports app.base and app.language."""
