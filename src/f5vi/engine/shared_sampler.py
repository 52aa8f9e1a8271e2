"""One sampling thread for the whole process: chunks of every request share its ODE batches.

Requests are synthesised in their own threads (text normalisation, reference preparation, vocoding
run there); only the flow-matching ODE — the part that needs the accelerator — goes through here.
A request hands over its chunks as :class:`~f5vi.engine.ode_batch.OdeItem` s and waits for them;
the sampling thread keeps a batch of active items, evaluates the backbone once per step for all of
them (:func:`~f5vi.engine.ode_batch.advance`), and between steps lets finished and cancelled items
leave and waiting ones join, up to a frame budget (``len(batch) x longest item <= max_batch_frames``).

Who joins is decided by fair share: the request with the fewest items in the batch goes first, then
streams before jobs, then the request served longest ago. So a long job cannot hold a short request
behind all its chunks, and a stream's chunk is taken as soon as there is room. A stream's first chunk
runs before its others are admitted, so its first audio is not slowed by its own later chunks.

A cancelled request leaves the batch at the next step without disturbing the other items; a failed
step (e.g. out of memory) fails the requests whose items were in it, and the thread goes on.
With ``max_batch_frames`` 1 (the CPU default) the batch holds one item at a time, exactly as before.

Other model work that must not overlap a step on the device (transcribing a voice, freeing memory)
goes through :meth:`SharedSampler.call`: the sampling thread runs it between two steps — at once when
nothing is sampled — and then goes on with the batch, so a call neither waits for running requests to
finish nor makes them wait for more than itself. Calls alternate with steps (a queue of calls cannot
starve the batch) and a call whose caller has gone (its cancel token set) before it started is dropped.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor

from f5vi.engine.errors import SynthesisCancelled
from f5vi.engine.model.cfm import CFM
from f5vi.engine.ode_batch import OdeItem, advance
from f5vi.engine.types import CancelToken

logger = logging.getLogger(__name__)
T = TypeVar("T")

CANCEL_POLL_SECONDS = 0.1
"""How often a caller waiting for its call looks at its cancel token."""

StepReport = Callable[[int, int, int], None]
"""``on_step(item_index, steps_done, steps_total)`` from the sampling thread; raising cancels."""


@dataclass(eq=False)
class _Request:
    items: list[OdeItem]
    cancel: CancelToken | None
    on_step: StepReport | None
    stream: bool
    arrival: int
    pending: deque[int] = field(default_factory=deque)
    active: set[int] = field(default_factory=set)
    finished: deque[tuple[int, Tensor]] = field(default_factory=deque)
    delivered: int = 0
    served_at: int = -1
    error: BaseException | None = None
    withdrawn: bool = False
    """Set once its items left (finished, failed, or the caller stopped listening mid-step)."""

    @property
    def waiting_for_first(self) -> bool:
        return self.stream and self.delivered == 0 and not self.finished


@dataclass(eq=False)
class _Call:
    fn: Callable[[], Any]
    cancel: CancelToken | None
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class SharedSampler:
    def __init__(self, cfm: CFM, max_batch_frames: int) -> None:
        self.cfm = cfm
        self.max_batch_frames = max(1, int(max_batch_frames))
        self._cv = threading.Condition()
        self._requests: list[_Request] = []
        self._batch: list[tuple[_Request, int]] = []
        self._running: list[tuple[_Request, int]] = []
        """The batch of the step being evaluated now (outside the lock)."""
        self._composition: tuple[int, ...] = ()
        self._arrivals = itertools.count()
        self._ticks = itertools.count()
        self._thread: threading.Thread | None = None
        self._calls: deque[_Call] = deque()
        self._call_last = False
        """The last turn of the sampling thread was a call: the next one is a step, if any."""
        self.calls_run = 0
        self.steps_run = 0
        self.largest_batch = 0
        """Statistics for tests and the benchmark: evaluations run, most items in one."""

    # ------------------------------------------------------------------ callers (request threads)
    def run(
        self,
        items: list[OdeItem],
        *,
        cancel: CancelToken | None = None,
        on_step: StepReport | None = None,
        stream: bool = False,
    ) -> Iterator[tuple[int, Tensor]]:
        """Sample ``items``; yields ``(index, out)`` as each finishes (earlier indexes are admitted first).

        Raises :class:`SynthesisCancelled` once ``cancel`` is set (within one step), or what failed.
        Closing the iterator early withdraws the items that have not finished; it returns once no
        step that holds them is still running, so nothing is computed for a request after it ended
        (and a process that exits right after it does not exit under a running step).
        """
        request = _Request(items, cancel, on_step, stream, next(self._arrivals))
        request.pending.extend(range(len(items)))
        with self._cv:
            self._requests.append(request)
            self._ensure_thread()
            self._cv.notify_all()
        try:
            while request.delivered < len(items):
                with self._cv:
                    while not request.finished and request.error is None:
                        self._cv.wait()
                    if request.error is not None:
                        raise request.error
                    index, out = request.finished.popleft()
                request.delivered += 1
                yield index, out
        finally:
            with self._cv:
                self._withdraw(request)
                self._cv.notify_all()
                while any(r is request for r, _ in self._running):
                    self._cv.wait()

    def call(self, fn: Callable[[], T], *, cancel: CancelToken | None = None) -> T:
        """Run ``fn`` on the sampling thread between two steps (at once if nothing is sampled).

        Blocks the calling thread until it ran; raises what ``fn`` raised. Raises
        :class:`SynthesisCancelled` if ``cancel`` is set before it started (it is then never run).
        """
        call = _Call(fn, cancel)
        with self._cv:
            self._calls.append(call)
            self._ensure_thread()
            self._cv.notify_all()
            while not call.done:
                if cancel is not None and cancel.cancelled and call in self._calls:
                    self._calls.remove(call)
                    raise SynthesisCancelled("the engine call was dropped: its caller has gone")
                self._cv.wait(CANCEL_POLL_SECONDS if cancel is not None else None)
        if call.error is not None:
            raise call.error
        return call.result

    @property
    def calls_waiting(self) -> int:
        with self._cv:
            return len(self._calls)

    def _take_call(self) -> _Call | None:
        """The next call whose caller is still there, unless the last turn was a call and a step waits."""
        if self._call_last and self._batch:
            return None
        while self._calls:
            call = self._calls.popleft()
            if call.cancel is None or not call.cancel.cancelled:
                return call
        return None

    def _run_call(self, call: _Call) -> None:
        try:
            call.result = call.fn()
        except BaseException as exc:  # handed to the caller; the thread goes on
            call.error = exc
        with self._cv:
            call.done = True
            self.calls_run += 1
            self._cv.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="f5vi-sampler", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ the sampling thread
    def _loop(self) -> None:
        while True:
            call: _Call | None = None
            with self._cv:
                while True:
                    self._drop_cancelled()
                    self._admit()
                    call = self._take_call()
                    if call is not None or self._batch:
                        break
                    self._cv.wait()
                self._call_last = call is not None
                batch = [] if call is not None else list(self._batch)
                self._running = batch
            if call is not None:
                self._run_call(call)
                continue
            try:
                self._step(batch)
            except Exception as exc:  # never let the thread die: every other request waits on it
                logger.exception("an ODE step of %d item(s) failed; their requests fail", len(batch))
                self._fail(batch, exc)
            finally:
                with self._cv:
                    self._running = []
                    self._cv.notify_all()

    def _fail(self, batch: list[tuple[_Request, int]], exc: BaseException) -> None:
        with self._cv:
            for request in {request for request, _ in batch}:
                if request.error is None:
                    request.error = exc
                self._withdraw(request)
            self._composition = ()
            self._cv.notify_all()

    def _step(self, batch: list[tuple[_Request, int]]) -> None:
        items = [request.items[index] for request, index in batch]
        composition = tuple(id(item) for item in items)
        if composition != self._composition:
            self.cfm.clear_cache()  # the backbone caches the text embedding of the batch it last saw
            self._composition = composition
        with torch.inference_mode():
            advance(self.cfm, items)
        self.steps_run += 1
        self.largest_batch = max(self.largest_batch, len(items))
        with self._cv:
            for request, index in batch:
                item = request.items[index]
                if request.error is not None or request.withdrawn:
                    continue  # withdrawn while the step ran (e.g. its caller stopped after a chunk)
                if request.on_step is not None and item.y_mid is None:
                    try:
                        request.on_step(index, item.step, item.steps)
                    except Exception as exc:  # a progress callback may cancel its request
                        request.error = exc
                        self._withdraw(request)
                        continue
                if item.done:
                    assert item.out is not None
                    request.active.discard(index)
                    self._batch.remove((request, index))
                    request.finished.append((index, item.out))
            self._cv.notify_all()

    def _admit(self) -> None:
        """Fill the batch up to the frame budget, fairly (see the module docstring)."""
        while True:
            candidates = [
                r
                for r in self._requests
                if r.pending and r.error is None and not (r.waiting_for_first and r.active)
            ]
            if not candidates:
                return
            request = min(candidates, key=lambda r: (len(r.active), not r.stream, r.served_at, r.arrival))
            index = request.pending[0]
            width = max([request.items[index].duration] + [r.items[i].duration for r, i in self._batch])
            if self._batch and width * (len(self._batch) + 1) > self.max_batch_frames:
                return
            request.pending.popleft()
            request.active.add(index)
            request.served_at = next(self._ticks)
            self._batch.append((request, index))

    def _drop_cancelled(self) -> None:
        for request in list(self._requests):
            if request.error is None and request.cancel is not None and request.cancel.cancelled:
                request.error = SynthesisCancelled("synthesis was cancelled")
                self._withdraw(request)
                self._cv.notify_all()

    def _withdraw(self, request: _Request) -> None:
        """Take the request's items out of the batch and the queue (under the lock)."""
        self._batch = [(r, i) for r, i in self._batch if r is not request]
        request.withdrawn = True
        request.pending.clear()
        request.active.clear()
        if request in self._requests:
            self._requests.remove(request)
