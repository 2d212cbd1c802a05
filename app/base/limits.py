"""Bounded load: how many transcriptions may wait, and how many one client may hold.

A public Space has one CPU-bound worker. Without bounds one script can queue hundreds of jobs (each
holding an upload on disk) and every learner after it waits for them all. Two limits apply when a
transcription asks to join Gradio's queue, before anything is queued:

- ZIMU_QUEUE_SIZE (default 8) transcriptions may wait behind the running ones; one more is refused
  with BUSY. Gradio's own queue max_size is twice that, for events of every kind, so cheap events
  (re-writing the files with other lines, picking a practice line) still pass when transcriptions
  fill their share.
- ZIMU_JOBS_PER_CLIENT (default 2; 0 turns it off) transcriptions, waiting or running, per client
  address; one more is refused with TOO_MANY. The address, not Gradio's session hash: a script
  picks a new session hash per request for free, a new address it cannot. Behind a proxy (a
  Space's front end, a local nginx) the connection comes from a private or loopback address and
  the learner's is in X-Forwarded-For: the rightmost public entry there (the one the proxy added;
  entries to its left are whatever the client sent). Learners behind one NAT share the limit.

The refusal is Gradio's "queue full" answer (HTTP 503) carrying our message: the browser shows
Gradio's own "This application is currently busy. Please try again.", gradio_client raises
QueueError("Queue is full! Please try again."), and the HTTP API returns our text in `detail`.
"""

from __future__ import annotations

import ipaddress
import os
from collections import Counter

QUEUE_SIZE = int(os.environ.get("ZIMU_QUEUE_SIZE", 8))
JOBS_PER_CLIENT = int(os.environ.get("ZIMU_JOBS_PER_CLIENT", 2))
BUSY = "Zimu is busy: {waiting} transcriptions are already waiting. Please try again in a minute."
TOO_MANY = ("You already have {held} transcriptions waiting or running. Please wait until one has "
            "finished, then try again.")


def _is_public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def client_address(request) -> str:
    """Who sent `request` (a Starlette request), as the per-client limit counts it."""
    peer = request.client.host if request.client else ""
    if _is_public(peer):  # a direct connection: its X-Forwarded-For is the client's own claim
        return peer
    forwarded = [a.strip() for a in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if a.strip()]
    public = [a for a in forwarded if _is_public(a)]
    return (public or forwarded or [peer])[-1]


def _held(queue, concurrency_id: str) -> tuple[list, list]:
    """(waiting, running) events of one concurrency id: Gradio's Queue internals
    (event_queue_per_concurrency_id, active_jobs), as in Gradio 6."""
    waiting = queue.event_queue_per_concurrency_id.get(concurrency_id)
    running = [e for job in queue.active_jobs if job for e in job if e.concurrency_id == concurrency_id]
    return (list(waiting.queue) if waiting is not None else []), running


def refusal(queue, concurrency_id: str, address: str, joining: Counter, queue_size: int,
            per_client: int) -> str | None:
    """The message refusing one more job from `address`, or None when it may join.
    `joining` counts jobs admitted but not yet in the queue (push awaits before appending)."""
    waiting, running = _held(queue, concurrency_id)
    queued = len(waiting) + sum(joining.values())
    if queued >= queue_size:
        return BUSY.format(waiting=queued)
    if per_client > 0:
        mine = sum(1 for e in waiting + running if e.request is not None and client_address(e.request) == address)
        mine += joining[address]
        if mine >= per_client:
            return TOO_MANY.format(held=mine)
    return None


def bound_queue(demo, concurrency_id: str = "model", queue_size: int = QUEUE_SIZE,
                per_client: int = JOBS_PER_CLIENT) -> None:
    """Check both limits when an event of `concurrency_id` asks to join `demo`'s queue (after
    demo.queue()). Gradio has no hook for this, so Queue.push of this one instance is wrapped."""
    queue = demo._queue
    push = queue.push
    joining: Counter = Counter()

    async def bounded_push(body, request, username):
        fn = demo.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is None or fn.concurrency_id != concurrency_id:
            return await push(body, request, username)
        address = client_address(request)
        message = refusal(queue, concurrency_id, address, joining, queue_size, per_client)
        if message is not None:
            return False, message, "queue_full"
        joining[address] += 1
        try:
            return await push(body, request, username)
        finally:
            joining[address] -= 1
            if not joining[address]:
                del joining[address]

    queue.push = bounded_push


# ---- live captions ---------------------------------------------------------------------------------
# A live session re-decodes its last seconds of speech every second (app.speech.live): on 2 cores one
# session keeps about one core busy (measured: README, "Live captions"), so a second would leave
# nothing to the uploads' transcriptions. ZIMU_LIVE_SESSIONS (default: one per 2 cores, at least one)
# sessions may run at once; one more is refused with LIVE_BUSY. A session that sends no audio for
# LIVE_IDLE seconds (a tab closed without its unload event) gives its place up.

def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


LIVE_SESSIONS = int(os.environ.get("ZIMU_LIVE_SESSIONS") or max(1, _cores() // 2))
LIVE_IDLE = 30.0
LIVE_BUSY = ("Live captions are busy: this server runs {limit} live session{s} at once on its {cores} CPU cores, "
             "and that is in use. Record with the microphone above and press “Transcribe recording” instead, "
             "or try again in a minute.")


class LiveSlots:
    """Who holds one of the `limit` live sessions, keyed by Gradio's session hash, with the time of
    their last chunk. Thread-safe: Gradio runs handlers on worker threads."""

    def __init__(self, limit: int = LIVE_SESSIONS, idle: float = LIVE_IDLE, clock=None) -> None:
        import threading
        import time

        self.limit, self.idle = limit, idle
        self.clock = clock or time.monotonic
        self._held: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> str | None:
        """None when `key` may run a live session (it now holds a place), else the refusal."""
        with self._lock:
            now = self.clock()
            for other, seen in list(self._held.items()):
                if now - seen > self.idle:
                    del self._held[other]
            if key in self._held or len(self._held) < self.limit:
                self._held[key] = now
                return None
            return LIVE_BUSY.format(limit=self.limit, s="" if self.limit == 1 else "s", cores=_cores())

    def touch(self, key: str) -> bool:
        """Record a chunk from `key`; False when it holds no place (refused, or released)."""
        with self._lock:
            if key not in self._held:
                return False
            self._held[key] = self.clock()
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def held(self) -> int:
        with self._lock:
            return len(self._held)
