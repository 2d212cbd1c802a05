"""Layer 1, base: what every other layer needs and nothing Chinese or audio-specific: the one user-facing
error type, atomic writes, progress lines, the queue limits, temp-file housekeeping and the Common Voice
split reader. Imports no other layer of app/."""
