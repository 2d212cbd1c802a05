"""Video for the study player: a browser-playable copy of an uploaded video, and the video with its ASS
subtitles (pinyin over the hanzi, tone colours, karaoke) burned in by ffmpeg's libass, for phones and
players that show no subtitle files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from app.base.errors import UserError
from app.study.player import VIDEO_SUFFIXES
from app.language.subtitles import ASS_RES, CueRules, Cue, to_karaoke_ass

BURN_SECONDS_PER_MINUTE = 120  # ffmpeg time limit per minute of video (veryfast x264 on 2 cores is far quicker)
FONTS_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/noto-cjk")


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if not found:
        raise UserError("ffmpeg is not installed on this server: apt-get install ffmpeg")
    return found


def playable_copy(source: Path, folder: Path) -> Path | None:
    """The video in a container browsers play, in `folder`: linked when it already is one, else its
    streams copied into MP4 (no re-encoding); None when that fails (the player then shows audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    if source.suffix.lower() in VIDEO_SUFFIXES:
        target = folder / f"video{source.suffix.lower()}"
        try:
            os.link(source, target)  # same disk (both under the temp dir): no copy of a large upload
        except OSError:
            shutil.copyfile(source, target)
        return target
    target = folder / "video.mp4"
    done = subprocess.run([_ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-map", "0:v:0",
                           "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart", str(target)],
                          capture_output=True, timeout=600)
    return target if done.returncode == 0 and target.stat().st_size > 0 else None


def video_size(path: Path) -> tuple[int, int] | None:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return stream.codec_context.width, stream.codec_context.height
    except Exception:
        return None


def burn_in(video: Path, cues: list[Cue], kinds, out: Path, duration: float, rules: CueRules | None = None) -> Path:
    """`video` with the cues drawn in (H.264 + AAC MP4, same length). The ASS is laid out for the video's
    own aspect ratio, so captions are not stretched."""
    size = video_size(video)
    if size is None:
        raise UserError("this source has no video to burn subtitles into")
    width, height = size
    resolution = (round(ASS_RES[1] * width / height), ASS_RES[1])
    ass = out.with_suffix(".burn.ass")
    to_karaoke_ass(cues, kinds, rules, resolution).save(str(ass), format_="ass", encoding="utf-8")
    fonts = next((d for d in FONTS_DIRS if Path(d).is_dir()), None)
    if fonts is None:  # libass would draw every hanzi as an empty box
        raise UserError("no CJK font on this server to draw the subtitles with: apt-get install fonts-noto-cjk")
    # Filter arguments are ':'-separated and quoted: escape what ffmpeg's filter parser treats specially.
    escaped = str(ass).replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\:")
    vf = f"ass='{escaped}':fontsdir='{fonts}'"
    # Even dimensions: x264 with yuv420p refuses odd ones.
    vf += ",scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p"
    command = [_ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-i", str(video), "-vf", vf, "-map", "0:v:0",
               "-map", "0:a:0?", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac", "-b:a", "96k",
               "-movflags", "+faststart", str(out)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=60 + BURN_SECONDS_PER_MINUTE * duration / 60)
    except subprocess.TimeoutExpired:
        raise UserError("burning the subtitles in took too long for this server") from None
    finally:
        ass.unlink(missing_ok=True)
    if done.returncode != 0 or not out.is_file():
        detail = " ".join(done.stderr.decode("utf-8", "replace").split())[:200]
        raise UserError(f"ffmpeg could not burn the subtitles in: {detail}")
    return out
