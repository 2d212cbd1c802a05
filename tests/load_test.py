"""Load test on loopback: the real app (`python -m app`) under N upload transcriptions, C at a time,
then a burst beyond the queue's size.

    python tests/load_test.py [--requests 20] [--concurrency 4] [--clips-per-request 3] [--burst 16]

A script, not a pytest test: timings depend on the machine and what else it runs, so they are
measured and printed here, never asserted (tests/test_load.py checks correctness only).

Each request is a different piece of speech: `--clips-per-request` zh-synth test clips joined with
short gaps by the ffmpeg binary into one MP3, uploaded through gradio_client exactly as the Upload
button sends it, English line "none" (offline). Every result is checked: the transcript's hanzi
must have CER < 0.5 against the clips' sentences. The server runs with TMPDIR set to a fresh folder
(its results and Gradio's upload cache land there and are removed at the end) and in its own
session, which is ended when the run finishes, fails or is interrupted. Latency is submit → result
on the client (upload, queue wait, transcription, download of the four subtitle files); the
server's own "transcribed in" time is reported beside it. The server's memory is sampled from
/proc/PID/status (VmRSS every 0.2 s, and VmHWM, the kernel's high-water mark); its child
processes (ffmpeg) through psutil when installed.

Each simulated user is its own gradio_client with its own address (X-Forwarded-For from loopback,
read as from a proxy): the app limits queued jobs per client address (app/base/limits.py). The burst
sends `--burst` more uploads at the same instant, each from a new address, to a server whose queue
holds ZIMU_QUEUE_SIZE waiting transcriptions: those beyond it must get the busy answer at once, the
rest must complete correctly; a raw join sent while the queue is full shows the app's own message.

Prints a Markdown table; exits 1 when a request failed, timed out or was transcribed wrongly, or
the burst was not split into completed and busy requests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import queue
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python tests/load_test.py`
    sys.path.insert(0, str(ROOT))

from tests import served_media  # noqa: E402
from tests.conftest import free_port, read_split, wait_http  # noqa: E402

MAX_REQUESTS = 200  # the script is bounded whatever the options say
MAX_CONCURRENCY = 16
MAX_BURST = 64
QUEUE_FULL = "Queue is full! Please try again."  # what gradio_client raises for the app's 503


@dataclass
class Request:
    index: int
    path: Path
    reference: str  # the joined sentences
    audio_seconds: float


@dataclass
class Result:
    request: Request
    ok: bool = False  # a transcript came back
    error: str = ""
    hanzi: str = ""
    cer: float | None = None
    latency: float = 0.0  # client: submit → result
    started: float | None = None  # time.perf_counter() at submit
    finished: float | None = None  # … and at the answer
    server_seconds: float | None = None  # the app's own "transcribed in … s"

    @property
    def correct(self) -> bool:
        return self.ok and self.cer is not None and self.cer < 0.5

    @property
    def busy(self) -> bool:
        """Refused at the door: the queue was full, or this client already had its share."""
        return self.error == f"QueueError: {QUEUE_FULL}"


@dataclass
class MemoryMonitor:
    """Samples the server's VmRSS (and its children's RSS) until stopped."""

    pid: int
    interval: float = 0.2
    peak_rss: int = 0  # bytes, server process alone
    peak_tree_rss: int = 0  # bytes, server + children at the same instant
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def status_kib(self, key: str) -> int | None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        return int(m.group(1)) if m else None

    def children_rss(self) -> int:
        try:
            import psutil
        except ImportError:
            return 0
        total = 0
        try:
            for child in psutil.Process(self.pid).children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        return total

    def sample(self) -> None:
        rss = self.status_kib("VmRSS")
        if rss is None:
            return
        rss *= 1024
        self.samples += 1
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_tree_rss = max(self.peak_tree_rss, rss + self.children_rss())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise SystemExit("the ffmpeg binary is needed to join clips: apt-get install ffmpeg")
    return path


def join_clips(rows: list[dict], out: Path) -> float:
    """The rows' clips one after another with SILENCE_GAP between, as a 16 kHz mono MP3; its seconds."""
    served_media.join_clips(rows, out, ("-c:a", "libmp3lame", "-b:a", "64k"))
    from app.speech.audio import probe_duration

    return probe_duration(out) or 0.0


def build_requests(folder: Path, count: int, clips_per_request: int, skip: int = 0) -> list[Request]:
    """`count` uploads, each of different zh-synth test clips (sentences of 5+ characters, in corpus
    order, after the first `skip` groups)."""
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 5]
    needed = (skip + count) * clips_per_request
    if needed > len(rows):
        raise SystemExit(f"{count} requests of {clips_per_request} clips need {needed} clips; "
                         f"the test split has {len(rows)}")
    folder.mkdir(parents=True, exist_ok=True)
    requests = []
    for i in range(count):
        group = rows[(skip + i) * clips_per_request:(skip + i + 1) * clips_per_request]
        out = folder / f"request-{skip + i + 1:03d}.mp3"
        seconds = join_clips(group, out)
        requests.append(Request(i + 1, out, "".join(r["sentence"] for r in group), seconds))
    return requests


def upload_endpoint(client) -> str:
    """api_name of the Upload button: the endpoint whose inputs are a File, then language, english, lines."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    names = [name for name, spec in api.items()
             if spec["parameters"] and spec["parameters"][0]["component"] == "File"
             and [p["parameter_name"] for p in spec["parameters"][1:4]] == ["language", "english", "lines"]]
    if len(names) != 1:
        raise RuntimeError(f"expected one Upload endpoint, found {names} among {list(api)}")
    return names[0]


def client_address(index: int) -> str:
    """A distinct address per simulated learner (a private one: nothing is ever sent there)."""
    return f"10.77.{index // 250}.{index % 250 + 1}"


def new_client(url: str, download_dir: Path, address: str | None = None):
    """A gradio_client as one learner: `address` goes in X-Forwarded-For, which the app believes from
    a loopback peer as from a proxy, so per-client limits see separate learners."""
    from gradio_client import Client

    headers = {"X-Forwarded-For": address} if address else None
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(download_dir), headers=headers)


def check(result: Result, prediction) -> None:
    """Reads one Upload result: status, player, transcript HTML, table, the four subtitle files, …"""
    from app.language.text import cer

    status, table, files = prediction[0], prediction[3], prediction[4:8]
    result.hanzi = "".join(row[2] for row in table["data"])
    result.cer = cer([result.request.reference], [result.hanzi])
    m = re.search(r"transcribed in ([\d.]+) s", status)
    result.server_seconds = float(m.group(1)) if m else None
    if [str(f).rsplit(".", 1)[-1] for f in files] != ["srt", "vtt", "ass", "txt"] or \
            not all(Path(f).is_file() for f in files):
        result.error = f"the four subtitle files did not come back: {files}"
    else:
        result.ok = True


def send(client, endpoint: str, request: Request, timeout: float) -> Result:
    """One upload through `client`, waited for at most `timeout` s; the Result says how it went."""
    from gradio_client import handle_file

    result = Result(request)
    started = result.started = time.perf_counter()
    try:
        job = client.submit(handle_file(str(request.path)), "zh", "none", ["hanzi", "pinyin"], api_name=endpoint)
        try:
            prediction = job.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            job.cancel()
            result.error = f"timed out after {timeout:.0f} s"
            return result
        result.finished = time.perf_counter()
        check(result, prediction)
    except Exception as exc:  # an AppError carries the app's one-line message, a QueueError the refusal
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        result.finished = result.finished or time.perf_counter()
        result.latency = result.finished - started
    return result


def run_requests(url: str, requests: list[Request], concurrency: int, download_dir: Path,
                 timeout: float = 300.0, deadline: float | None = None) -> list[Result]:
    """Send every request through gradio_client, `concurrency` at a time.

    One Client per worker thread, each with its own address: each is its own browser session (its
    own session hash and event stream) of its own learner, as `concurrency` learners would be. A
    shared Client is meant to be usable from several threads too, but separate ones are the faithful
    model of separate users and keep a client-side bug from serialising the load. Each request waits
    at most `timeout` s, and none is started after `deadline` (time.monotonic()).
    """
    clients: queue.Queue = queue.Queue()
    endpoint = None
    for i in range(concurrency):
        client = new_client(url, download_dir, client_address(i))
        endpoint = endpoint or upload_endpoint(client)
        clients.put(client)

    def one(request: Request) -> Result:
        if deadline is not None and time.monotonic() > deadline:
            return Result(request, error="not started: the run's deadline passed")
        client = clients.get()
        try:
            return send(client, endpoint, request, timeout)
        finally:
            clients.put(client)

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(one, requests))
    finally:
        while not clients.empty():
            clients.get().close()


@dataclass
class Burst:
    results: list[Result]
    probe: tuple[int, str] | None  # a raw join's (HTTP status, detail) while the queue was full


def run_burst(url: str, requests: list[Request], download_dir: Path, queue_size: int, timeout: float = 300.0,
              first_address: int = 1000, same_address: int = 1, probe_own: bool = False) -> Burst:
    """Send all `requests` at the same instant, each from its own client (the first `same_address`
    from one address), and once `queue_size` wait send a raw join: from a new address, or with
    `probe_own` from the shared one."""
    clients = [new_client(url, download_dir, client_address(first_address + max(0, i - same_address + 1)))
               for i in range(len(requests))]
    endpoint = upload_endpoint(clients[0])
    barrier = threading.Barrier(len(requests))

    def one(i: int) -> Result:
        barrier.wait()
        return send(clients[i], endpoint, requests[i], timeout)

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(requests)) as pool:
            futures = [pool.submit(one, i) for i in range(len(requests))]
            prober = first_address if probe_own else first_address + len(requests)
            probe = probe_when_full(url, clients[0], queue_size, client_address(prober),
                                    until=lambda: all(f.done() for f in futures))
            return Burst([f.result() for f in futures], probe)
    finally:
        for client in clients:
            client.close()


def join(url: str, client, address: str) -> tuple[int, str]:
    """A raw POST to Gradio's /queue/join for the URL button, as a browser sends it, from `address`:
    (HTTP status, detail). Its link is a closed loopback port: if it is let in it fails at once."""
    import httpx

    from tests.served_media import closed_port_url

    types = {c["id"]: c["type"] for c in client.config["components"]}
    dependency = next(d for d in client.config["dependencies"]  # link, language, English, lines, model
                      if [types[i] for i in d["inputs"][:4]] == ["textbox", "dropdown", "dropdown", "checkboxgroup"])
    body = {"data": [closed_port_url(), "zh", "none", ["hanzi"], ""], "fn_index": dependency["id"],
            "session_hash": secrets.token_hex(8), "trigger_id": None, "event_data": None}
    answer = httpx.post(f"{url}gradio_api/queue/join", json=body, headers={"X-Forwarded-For": address}, timeout=30)
    return answer.status_code, answer.json().get("detail", "") if answer.status_code != 200 else ""


def probe_when_full(url: str, client, queue_size: int, address: str, until) -> tuple[int, str] | None:
    """Poll Gradio's queue status; the moment `queue_size` events wait, send one raw join."""
    import httpx

    while not until():
        waiting = httpx.get(f"{url}gradio_api/queue/status", timeout=30).json()["queue_size"]
        if waiting >= queue_size:
            return join(url, client, address)
        time.sleep(0.05)
    return None


def wall_time(results: list[Result]) -> float:
    """First submit to last answer (client set-up excluded)."""
    stamps = [r for r in results if r.started is not None and r.finished is not None]
    return max(r.finished for r in stamps) - min(r.started for r in stamps) if stamps else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n·q/100)
    return ordered[int(rank) - 1]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


def start_server(port: int, tmpdir: Path, log: Path, server_concurrency: int | None,
                 queue_size: int) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmpdir), "GRADIO_ANALYTICS_ENABLED": "False",
           "ZIMU_QUEUE_SIZE": str(queue_size)}
    if server_concurrency is not None:
        env["ZIMU_CONCURRENCY"] = str(server_concurrency)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_server(proc: subprocess.Popen) -> None:
    """End the server's session (the app and any ffmpeg it started), politely first."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def device() -> str:
    """What the app picks by default (app/speech/model.py): CUDA float16 when a GPU is visible, else CPU int8."""
    from app.speech.model import default_compute_type, default_device

    name = default_device()
    return f"{name.upper()} {default_compute_type(name)}"


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def report(args, results: list[Result], wall: float, memory: MemoryMonitor, idle_rss: int, hwm: int | None,
           load_before: str, load_after: str, server_concurrency: str, cache: tuple[int, int],
           results_dir: tuple[int, int]) -> str:
    done = [r for r in results if r.ok]
    latencies = [r.latency for r in done]
    server = [r.server_seconds for r in done if r.server_seconds is not None]
    audio = sum(r.request.audio_seconds for r in done)
    mean_audio = statistics.mean(r.request.audio_seconds for r in results)
    cers = [r.cer for r in done if r.cer is not None]
    rows = [
        ("requests", f"{len(results)}, {args.concurrency} at a time (one gradio_client per worker)"),
        ("audio per request", f"{args.clips_per_request} zh-synth test clip(s) joined, "
                              f"mean {mean_audio:.1f} s (MP3 64 kb/s)"),
        ("server", f"`python -m app`, ZIMU_CONCURRENCY={server_concurrency}, {device()}, "
                   f"{os.cpu_count()} cores"),
        ("completed", f"{len(done)}/{len(results)}"),
        ("correct (CER < 0.5)", f"{sum(r.correct for r in results)}/{len(results)}"
                                + (f", mean CER {statistics.mean(cers):.3f}" if cers else "")),
    ]
    if latencies:
        rows += [
            ("latency p50 / p95 / max", f"{percentile(latencies, 50):.1f} s / {percentile(latencies, 95):.1f} s"
                                        f" / {max(latencies):.1f} s"),
            ("server transcription time p50 / max",
             f"{percentile(server, 50):.1f} s / {max(server):.1f} s" if server else "n/a"),
        ]
    rows += [
        ("total wall time (first submit → last answer)", f"{wall:.1f} s"),
        ("throughput", f"{len(done) / wall * 60:.1f} requests/min, {audio / wall:.2f} s of audio per s"
                       if wall else "n/a"),
        ("server RSS idle → peak during load", f"{mib(idle_rss)} → {mib(memory.peak_rss)}"
                                               f" (with children {mib(memory.peak_tree_rss)}, "
                                               f"{memory.samples} samples)"),
        ("server VmHWM (lifetime, incl. model load)", mib(hwm * 1024) if hwm else "n/a"),
        ("server temp after run", f"Gradio cache {cache[0]} files {mib(cache[1])}, "
                                  f"zimu-results {results_dir[0]} files {mib(results_dir[1])}"),
        ("load average before → after", f"{load_before} → {load_after}"),
    ]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def burst_split(burst: Burst) -> bool:
    """Every burst request either completed (transcript and files) or was refused as busy, and both
    happened."""
    results = burst.results
    return all(r.ok or r.busy for r in results) and any(r.busy for r in results) and any(r.ok for r in results)


def burst_report(args, burst: Burst) -> str:
    done = [r for r in burst.results if r.ok]
    busy = [r for r in burst.results if r.busy]
    other = [r for r in burst.results if not r.ok and not r.busy]
    rows = [
        ("burst", f"{len(burst.results)} uploads at one instant, each from its own client; "
                  f"ZIMU_QUEUE_SIZE={args.queue_size}"),
        ("completed (of which CER < 0.5) / refused busy / other",
         f"{len(done)} ({sum(r.correct for r in done)}) / {len(busy)} / {len(other)}"),
        ("busy answer after (p50 / max)", f"{percentile([r.latency for r in busy], 50):.2f} s / "
                                          f"{max(r.latency for r in busy):.2f} s" if busy else "n/a"),
        ("completed: latency p50 / max", f"{percentile([r.latency for r in done], 50):.1f} s / "
                                         f"{max(r.latency for r in done):.1f} s" if done else "n/a"),
        ("a raw join while the queue was full", f"HTTP {burst.probe[0]}: {burst.probe[1]}" if burst.probe
         else "n/a (the queue never filled)"),
    ]
    return "\n".join(["| burst | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--clips-per-request", type=int, default=3, choices=[1, 2, 3, 4])
    parser.add_argument("--warmup", type=int, default=1,
                        help="requests sent (one at a time) before the measured ones, not counted (default: 1)")
    parser.add_argument("--server-concurrency", type=int, default=None,
                        help="ZIMU_CONCURRENCY for the server (default: the app's, 1)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one request may take")
    parser.add_argument("--deadline", type=float, default=900,
                        help="seconds after which no new request starts (the run stops itself)")
    parser.add_argument("--queue-size", type=int, default=8, help="ZIMU_QUEUE_SIZE for the server (default: 8)")
    parser.add_argument("--burst", type=int, default=16,
                        help="uploads sent at one instant after the run, from as many clients (0: none)")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--requests 1..{MAX_REQUESTS}, --concurrency 1..{MAX_CONCURRENCY}")
    if not 0 <= args.burst <= MAX_BURST or args.queue_size < 1:
        parser.error(f"--burst 0..{MAX_BURST}, --queue-size 1 or more")

    load_before = loadavg()
    work = Path(tempfile.mkdtemp(prefix="zimu-load-"))
    server_tmp = work / "server-tmp"
    server_tmp.mkdir()
    # gradio_client 2.7 leaves an empty <tempdir>/<40 hex> folder per downloaded file: keep them in `work`.
    (work / "client-tmp").mkdir()
    tempfile.tempdir = str(work / "client-tmp")
    proc = None
    try:
        print(f"building {args.warmup + args.requests + args.burst} uploads in {work} …", file=sys.stderr)
        warmups = build_requests(work / "inputs", args.warmup, args.clips_per_request) if args.warmup else []
        requests = build_requests(work / "inputs", args.requests, args.clips_per_request, skip=args.warmup)
        bursting = build_requests(work / "inputs", args.burst, args.clips_per_request,
                                  skip=args.warmup + args.requests) if args.burst else []

        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        proc = start_server(port, server_tmp, work / "server.log", args.server_concurrency, args.queue_size)
        print(f"starting the app on {url} (pid {proc.pid}) …", file=sys.stderr)
        wait_http(url, timeout=300, proc=proc)
        memory = MemoryMonitor(proc.pid)
        memory.sample()
        idle_rss = memory.peak_rss
        download_dir = work / "downloads"
        if warmups:
            print(f"{len(warmups)} warm-up request(s) …", file=sys.stderr)
            for r in run_requests(url, warmups, 1, download_dir, args.timeout):
                if not r.correct:
                    print(f"warm-up failed: {r.error or (r.hanzi, r.cer)}", file=sys.stderr)
            memory.sample()
            idle_rss = memory.peak_rss
            memory.peak_rss = memory.peak_tree_rss = 0
        print(f"{len(requests)} requests, {args.concurrency} at a time …", file=sys.stderr)
        memory.start()
        results = run_requests(url, requests, args.concurrency, download_dir, args.timeout,
                               deadline=time.monotonic() + args.deadline)
        wall = wall_time(results)
        memory.stop()
        memory.sample()
        hwm = memory.status_kib("VmHWM")
        load_after = loadavg()

        for r in results:
            mark = "ok " if r.correct else "BAD"
            detail = r.error or f"CER {r.cer:.2f} {r.hanzi}"
            print(f"{mark} #{r.request.index:02d} {r.latency:6.1f} s  ref {r.request.reference}  →  {detail}",
                  file=sys.stderr)
        burst = None
        if bursting:
            print(f"burst: {len(bursting)} uploads at once, queue size {args.queue_size} …", file=sys.stderr)
            burst = run_burst(url, bursting, download_dir, args.queue_size, args.timeout)
            for r in burst.results:
                mark = "ok " if r.correct else "busy" if r.busy else "BAD"
                print(f"{mark} burst #{r.request.index:02d} {r.latency:6.1f} s  →  {r.error or f'CER {r.cer:.2f}'}",
                      file=sys.stderr)
        print(report(args, results, wall, memory, idle_rss, hwm, load_before, load_after,
                     str(args.server_concurrency or os.environ.get("ZIMU_CONCURRENCY", 1)),
                     folder_size(server_tmp / "gradio"), folder_size(server_tmp / "zimu-results")))
        if burst is not None:
            print("\n" + burst_report(args, burst))
        return 0 if all(r.correct for r in results) and (burst is None or burst_split(burst)) else 1
    finally:
        if proc is not None:
            stop_server(proc)
            log = (work / "server.log").read_text(errors="replace")
            if "Traceback" in log:
                print("server log has tracebacks:\n" + log[-4000:], file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
