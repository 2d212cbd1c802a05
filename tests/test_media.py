"""The link path with the real yt-dlp (generic extractor) against media served on 127.0.0.1."""

from __future__ import annotations

import pytest

from app.base.errors import UserError
from app.jobs import link_cache, run_job
from app.speech.media import check_url, download_audio, link_info
from app.language.text import cer, has_cjk, traditional_only_chars
from app.speech.transcribe import TranscribeOptions
from tests.served_media import closed_port_url, local_site, media_duration

OPTIONS = TranscribeOptions(english="none")
MAX = 600.0


@pytest.fixture(scope="module")
def site(tmp_path_factory, zh_synth):
    with local_site(tmp_path_factory.mktemp("site")) as s:
        yield s


def refused(url: str, model, workdir, max_duration: float = MAX, allow_local: bool = True, **kw) -> str:
    with pytest.raises(UserError) as info:
        run_job(url, model, OPTIONS, max_duration, allow_local=allow_local, **kw)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def test_video_link_is_downloaded_and_transcribed(site, model, tmp_path):
    job = run_job(site.url("clip.mp4"), model, OPTIONS, MAX, allow_local=True)
    assert job.media_path is None and not job.cached  # the download folder is already gone
    assert job.title == "clip"
    assert abs(job.transcript.duration - media_duration(site.folder / "clip.mp4")) < 0.5
    hanzi = job.transcript.text
    assert has_cjk(hanzi)
    assert traditional_only_chars(hanzi) == []
    score = cer([site.sentences], [hanzi])
    assert score < 0.5, (site.sentences, hanzi, score)
    # Cues follow the speech in order: the first sentence starts the transcript, the last ends it.
    assert job.transcript.cues[0].start < 1.0
    assert job.transcript.cues[-1].end > job.transcript.duration - 2.0


def test_page_with_one_embedded_video_is_not_a_playlist(site, tmp_path):
    download = download_audio(link_info(site.url("one.html"), MAX, allow_local=True), tmp_path,
                              allow_local=True)
    assert download.path.is_file() and download.path.parent == tmp_path
    assert download.path.read_bytes() == (site.folder / "clip.mp4").read_bytes()
    assert download.webpage_url == site.url("one.html")


@pytest.mark.parametrize("page", ["feed.xml", "two.html"])
def test_playlist_link_is_refused_before_downloading(site, model, tmp_path, page):
    import yt_dlp

    # The page really is a two-item playlist for yt-dlp (so the refusal below is about that).
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "cachedir": False}) as ydl:
        info = ydl.extract_info(site.url(page), download=False)
    assert info["_type"] == "playlist" and len(list(info["entries"])) == 2

    message = refused(site.url(page), model, tmp_path)
    assert message == "this link is a playlist or channel: paste the link of a single video"
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded


def test_unreachable_link(model, tmp_path):
    url = closed_port_url()
    assert refused(url, model, tmp_path) == f"could not reach {url}: check the link and your connection"


def test_page_without_media(site, model, tmp_path):
    url = site.url("text.html")
    assert refused(url, model, tmp_path) == f"no video or audio found at {url} (unsupported link)"


def test_missing_file_is_reported_as_unavailable_not_unreachable(site, model, tmp_path):
    url = site.url("gone.mp4")  # the server answers 404
    assert refused(url, model, tmp_path) == f"the video at {url} is unavailable or was removed"


def test_forbidden_is_reported_with_its_status(site, model, tmp_path):
    url = site.url("status/403")
    assert refused(url, model, tmp_path) == f"could not download {url}: the site answered HTTP error 403"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/clip.mp4", "file:///etc/passwd"])
def test_only_http_links(model, tmp_path, url):
    message = refused(url, model, tmp_path)
    assert message == f"unsupported link {url}: only http:// and https:// links are accepted"


def test_video_longer_than_the_limit(site, model, tmp_path):
    seconds = media_duration(site.folder / "clip.mp4")
    assert seconds > 3
    message = refused(site.url("clip.mp4"), model, tmp_path, max_duration=2)
    # Named as the user knows it, not by the download's internal file name (media.mp4).
    assert message == f"this video is 0:{round(seconds):02d} long; the limit is 0:02"


def test_link_to_a_file_that_is_not_media(site, model, tmp_path):
    message = refused(site.url("junk.mp4"), model, tmp_path)
    assert message == "could not read this video: not an audio or video file ffmpeg can decode"


def test_same_video_twice_comes_from_the_cache(site, model):
    first = run_job(site.url("clip.mp4"), model, OPTIONS, MAX, allow_local=True)
    again = run_job(site.url("clip.mp4"), model, OPTIONS, MAX, allow_local=True)
    assert again.cached and again.transcript.text == first.transcript.text
    other = run_job(site.url("clip.mp4"), model, TranscribeOptions(english="cedict"), MAX, allow_local=True)
    assert not other.cached  # other options: transcribed again


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.mp4", "http://localhost/x.mp4", "http://10.1.2.3/v.mp4",
                                 "http://192.168.0.1/v", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]/x.mp4", "http://0.0.0.0/x"])
def test_local_and_private_hosts_are_refused_by_default(url):
    with pytest.raises(UserError, match="local or private network addresses are refused"):
        check_url(url)


def test_refused_before_any_request_is_made(site, model):
    # The served site is on 127.0.0.1: without the switch nothing is fetched.
    before = site.requests()
    assert refused(site.url("clip.mp4"), model, None, allow_local=False) == \
        "links to local or private network addresses are refused"
    assert site.requests() == before


def test_download_size_limit_is_enforced(site, model):
    link_cache.clear()  # a cached video needs no download, so no size check
    message = refused(site.url("clip.mp4"), model, None, max_download_mb=0.01)
    assert message == "this video is larger than the 0 MB download limit"
