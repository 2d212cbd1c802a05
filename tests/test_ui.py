"""The running app (`python -m app` on loopback) through gradio_client, as the Upload and Video URL
buttons call it: bad input gives the one-line message, good input a transcript and subtitle files."""

from __future__ import annotations


import pysubs2
import pytest

from app.language.text import cer, has_cjk, traditional_only_chars
from tests.conftest import clip_path, read_split
from tests.served_media import closed_port_url, local_site

pytestmark = pytest.mark.slow  # every test here needs the whole app running

FORMATS = ("srt", "vtt", "ass", "txt")


@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    from gradio_client import Client

    return Client(app_url, verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path_factory.mktemp("client-downloads")))


@pytest.fixture(scope="module")
def endpoints(client) -> dict[str, str]:
    return find_endpoints(client)


def find_endpoints(client) -> dict[str, str]:
    """api_name of the Upload button (its input is the File) and of the URL button (the Textbox)."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    by_input: dict[str, list[str]] = {}
    for name, spec in api.items():
        params = spec["parameters"]
        if [p["parameter_name"] for p in params[1:4]] == ["language", "english", "lines"]:
            by_input.setdefault(params[0]["component"], []).append(name)
    assert len(by_input.get("File", [])) == 1, api.keys()
    assert by_input.get("Textbox"), api.keys()  # the URL button, then the Textbox's Enter
    return {"upload": by_input["File"][0], "url": by_input["Textbox"][0]}


@pytest.fixture(scope="module")
def site(tmp_path_factory, zh_synth):
    with local_site(tmp_path_factory.mktemp("site")) as s:
        yield s


def call(client, endpoint: str, source):
    return client.predict(source, "zh", "none", ["hanzi", "pinyin"], api_name=endpoint)


def app_error(client, endpoint: str, source) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        call(client, endpoint, source)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("name, expected", [
    ("empty", {"empty.mp3 is empty (0 bytes)"}),
    ("random", {"could not read random.mp3: not an audio or video file ffmpeg can decode",
                "could not decode random.mp3: not an audio or video file ffmpeg can decode"}),
    ("silence", {"no speech found in the audio"}),
])
def test_upload_of_a_bad_file_shows_its_message(client, endpoints, bad_files, name, expected):
    from gradio_client import handle_file

    assert app_error(client, endpoints["upload"], handle_file(str(bad_files[name]))) in expected


@pytest.mark.parametrize("kind", ["unreachable", "ftp", "server path", "blank"])
def test_bad_link_shows_its_message(client, endpoints, kind, bad_files):
    url = {"unreachable": closed_port_url(), "ftp": "ftp://127.0.0.1/clip.mp4",
           # A path typed into the link box is not a link: the server must not open its own files.
           "server path": str(bad_files["silence"]), "blank": "  "}[kind]
    expected = {
        "unreachable": f"could not reach {url}: check the link and your connection",
        "ftp": f"unsupported link {url}: only http:// and https:// links are accepted",
        "server path": f"unsupported link {url}: only http:// and https:// links are accepted",
        "blank": "paste a video or audio link first",
    }[kind]
    assert app_error(client, endpoints["url"], url) == expected


def test_playlist_link_shows_its_message(client, endpoints, site):
    message = app_error(client, endpoints["url"], site.url("feed.xml"))
    assert message == "this link is a playlist or channel: paste the link of a single video"


def check_result(result, reference: str):
    status, player, transcript_html, table, *rest = result
    files = rest[:len(FORMATS)]  # then the practise-a-line menu and states
    assert "subtitles" in status
    assert 'lang="zh-Hans"' in transcript_html and "<ruby" in transcript_html
    hanzi = "".join(row[2] for row in table["data"])
    assert has_cjk(hanzi) and traditional_only_chars(hanzi) == []
    assert cer([reference], [hanzi]) < 0.5, (reference, hanzi)
    # The four subtitle files came back over HTTP into the client's download folder.
    assert [p.rsplit(".", 1)[1] for p in files] == list(FORMATS)
    subs = pysubs2.load(files[0], encoding="utf-8")
    srt_hanzi = "".join(line for e in subs for line in e.plaintext.splitlines() if has_cjk(line))  # 1-2 per cue
    assert normalize(srt_hanzi) == normalize(hanzi)
    assert any(ch in subs[0].plaintext for ch in "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ")  # pinyin line
    return player


def normalize(text: str) -> str:
    from app.language.text import normalize_for_cer

    return normalize_for_cer(text)


def test_upload_of_a_good_clip_returns_transcript_and_srt(client, endpoints, zh_synth):
    from gradio_client import handle_file

    row = next(r for r in read_split("test") if len(r["sentence"]) >= 8)
    player = check_result(call(client, endpoints["upload"], handle_file(str(clip_path(row)))), row["sentence"])
    assert "<audio" in player and "<video" not in player and 'audio.mp3"' in player  # the study player


def test_video_link_returns_transcript_and_playable_audio(client, endpoints, site):
    player = check_result(call(client, endpoints["url"], site.url("clip.mp4")), site.sentences)
    # Audio only was downloaded (no "keep the video"): re-encoded for the browser's player.
    assert "<audio" in player and "<video" not in player and 'audio.mp3"' in player


@pytest.mark.slow
def test_upload_size_limit_is_configurable(tmp_path, zh_synth):
    """ZIMU_MAX_UPLOAD_MB reaches Gradio's max_file_size: a 5 kB clip is refused at a 2 kB limit."""
    import os
    import subprocess
    import sys

    from gradio_client import Client, handle_file

    from tests.conftest import ROOT, free_port, wait_http

    port = free_port()
    env = dict(os.environ, ZIMU_MAX_UPLOAD_MB="0.002")
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc=server)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "dl"))
        upload = find_endpoints(client)["upload"]
        clip = clip_path(read_split("test")[0])
        assert clip.stat().st_size > 2_000
        with pytest.raises(Exception, match="exceeds the maximum file size of 2000 bytes"):
            client.predict(handle_file(str(clip)), "zh", "none", ["hanzi"], api_name=upload)
    finally:
        server.terminate()
        server.wait(10)


def test_video_link_with_keep_the_video_plays_as_video(client, endpoints, site, app_url):
    """"Keep the video": the link's video is downloaded (a single-file rendition) and the study player
    plays it as video, served by the app itself."""
    import re
    import urllib.request

    from tests.served_media import media_duration

    result = client.predict(site.url("clip.mp4"), "zh", "none", ["hanzi", "pinyin"], keep_video=True,
                            api_name=endpoints["url"])
    check_result(result, site.sentences)
    player = result[1]
    assert "<video" in player and "<audio" not in player
    src = re.search(r'src="(/gradio_api/file=[^"]+)"', player).group(1)
    assert src.endswith("video.mp4")
    with urllib.request.urlopen(app_url.rstrip("/") + src, timeout=30) as response:
        served = response.read()
    assert served == (site.folder / "clip.mp4").read_bytes()  # the download itself, not re-encoded
    assert media_duration(site.folder / "clip.mp4") > 1
