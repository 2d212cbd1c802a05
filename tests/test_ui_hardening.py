"""The UI (launched in this process on loopback, no model loaded) against hand-made requests: a file
path the server never received, values of the wrong shape. Each gets a clear message and one line in
the server log, never a traceback or a bare {"error": null}. Gradio's analytics stay off."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.conftest import free_port

MESSAGE = "This request could not be read: upload the file again from this page."


@pytest.fixture(scope="module")
def ui():
    from app.ui import build_ui

    demo = build_ui()
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def upload_endpoint(ui):
    from gradio_client import Client

    from tests.test_ui import find_endpoints

    client = Client(ui[1], verbose=False, analytics_enabled=False)
    try:
        return find_endpoints(client)["upload"]
    finally:
        client.close()


def call_raw(base: str, endpoint: str, first_input) -> tuple[str, dict | None]:
    """POST the Upload button's inputs as a client could craft them; the SSE answer's last event and data."""
    body = json.dumps({"data": [first_input, "zh", "none", ["hanzi"], ""]}).encode()
    request = urllib.request.Request(f"{base}gradio_api/call/{endpoint.lstrip('/')}", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{base}gradio_api/call/{endpoint.lstrip('/')}/{event_id}", timeout=60) as response:
        lines = response.read().decode().splitlines()
    event = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")][-1]
    data = [line.split(": ", 1)[1] for line in lines if line.startswith("data: ")][-1]
    return event, json.loads(data)


FILE_META = {"_type": "gradio.FileData"}
CRAFTED = {
    "a server file never uploaded": {"path": "/etc/passwd", "meta": FILE_META},
    "a path of the wrong type": {"path": 12345, "meta": FILE_META},
    "a list where a file belongs": {"path": ["/etc/passwd"], "meta": FILE_META},
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_upload_payload_gives_a_message_and_one_log_line(ui, upload_endpoint, capfd, case):
    capfd.readouterr()
    event, data = call_raw(ui[1], upload_endpoint, CRAFTED[case])
    log = capfd.readouterr().err
    assert event == "error" and data["error"] == MESSAGE, (case, event, data)
    assert "Traceback" not in log, log
    lines = [line for line in log.splitlines() if line.startswith("refused a request with unreadable inputs: ")]
    assert len(lines) == 1, log


def test_gradio_analytics_are_off(ui):
    assert ui[0].analytics_enabled is False
