"""Concurrent uploads against the running app: every request completes with a correct transcript.

Correctness only: timings come from `python tests/load_test.py`, never from a test.
"""

from __future__ import annotations

import tempfile

import pytest

from tests.load_test import build_requests, run_requests

pytestmark = pytest.mark.slow  # the whole app, eight transcriptions


def test_eight_uploads_four_at_a_time_all_transcribed_correctly(app_url, zh_synth, tmp_path, monkeypatch):
    # gradio_client 2.7 leaves an empty <tempdir>/<40 hex> folder per downloaded file: keep them here.
    (tmp_path / "client-temp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "client-temp"))
    # Two different zh-synth clips per upload, none shared between uploads.
    requests = build_requests(tmp_path / "inputs", 8, clips_per_request=2)
    assert len({r.reference for r in requests}) == 8

    results = run_requests(app_url, requests, concurrency=4, download_dir=tmp_path / "downloads", timeout=240)

    assert [r.error for r in results if r.error] == []
    assert all(r.ok for r in results)
    wrong = [(r.request.reference, r.hanzi, r.cer) for r in results if not r.cer < 0.5]
    assert wrong == []
