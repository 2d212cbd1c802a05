"""Video for the study player without a browser: which rendition "keep the video" picks, the
browser-playable copy of an upload, and telling video from audio (cover art is not video)."""

from __future__ import annotations

import subprocess

import pytest

from app.speech.media import VIDEO_FORMAT
from tests.served_media import ffmpeg


def pick(formats: list[dict]) -> str:
    """The format id yt-dlp's own selector picks with VIDEO_FORMAT (no network: the formats are given)."""
    import yt_dlp

    with yt_dlp.YoutubeDL({"format": VIDEO_FORMAT, "quiet": True, "simulate": True}) as ydl:
        selector = ydl.build_format_selector(VIDEO_FORMAT)
        context = {"formats": formats, "has_merged_format": False, "incomplete_formats": False}
        return next(iter(selector(context)))["format_id"]


def fmt(format_id, height=None, vcodec="avc1", acodec="mp4a", tbr=100):
    return {"format_id": format_id, "url": f"https://example.com/{format_id}", "ext": "mp4", "height": height,
            "vcodec": vcodec, "acodec": acodec, "tbr": tbr, "protocol": "https"}


def test_keep_the_video_takes_the_best_single_file_rendition_up_to_480p():
    formats = [fmt("audio", None, vcodec="none", tbr=128), fmt("360p", 360, tbr=500), fmt("480p", 480, tbr=900),
               fmt("720p", 720, tbr=2500), fmt("1080-video-only", 1080, acodec="none", tbr=5000)]
    assert pick(formats) == "480p"
    # No rendition of 480p or less with sound: the audio (yt-dlp may not merge streams here).
    assert pick([fmt("audio", None, vcodec="none"), fmt("720p", 720), fmt("240-video-only", 240, acodec="none")]) \
        == "audio"
    # A direct link states no height or codecs: taken as it is (the size limit still applies).
    assert pick([{"format_id": "0", "url": "https://example.com/a.mp4", "ext": "mp4", "protocol": "https"}]) == "0"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")

    def run(*args: str) -> None:
        subprocess.run([ffmpeg(), "-v", "error", "-y", *args], check=True, capture_output=True)

    run("-f", "lavfi", "-i", "color=c=red:s=160x120:r=10:d=2", "-f", "lavfi", "-i", "sine=d=2",
        "-c:v", "libx264", "-c:a", "aac", "-shortest", str(folder / "clip.mkv"))
    run("-f", "lavfi", "-i", "sine=d=2", str(folder / "plain.mp3"))
    run("-i", str(folder / "plain.mp3"), "-f", "lavfi", "-i", "color=c=blue:s=64x64:d=1", "-map", "0", "-map", "1",
        "-c:a", "copy", "-c:v", "mjpeg", "-frames:v", "1", "-disposition:v", "attached_pic", str(folder / "cover.mp3"))
    return folder


def test_video_and_audio_are_told_apart(clips):
    from app.study.player import has_video

    assert has_video(clips / "clip.mkv")
    assert not has_video(clips / "plain.mp3") and not has_video(clips / "cover.mp3")  # cover art is no video


def test_a_container_browsers_do_not_play_is_remuxed_to_mp4_unchanged(clips, tmp_path):
    import av

    from app.study.video import playable_copy

    copy = playable_copy(clips / "clip.mkv", tmp_path)
    assert copy == tmp_path / "video.mp4"
    with av.open(str(copy)) as c, av.open(str(clips / "clip.mkv")) as original:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.video[0].codec_context.name == original.streams.video[0].codec_context.name == "h264"
        assert abs(float(c.duration / av.time_base) - float(original.duration / av.time_base)) < 0.15
    mp4 = playable_copy(copy, tmp_path / "again")  # already an MP4: linked, not copied
    assert mp4.read_bytes() == copy.read_bytes() and mp4.stat().st_ino == copy.stat().st_ino
