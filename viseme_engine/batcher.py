"""One micro-batcher per model, shared by every stream in the process.

Requests (a block of one stream's audio plus that stream's state) are gathered
for up to `max_wait_ms`, or until `max_batch` rows, grouped by block length
(rows of one inference must be equally long; padding would corrupt the
streams' state), and run as one batched inference in a worker thread, so the
event loop never waits on the model. At most `max_pending` requests may be in
flight; beyond that a request waits `admission_timeout` for room and is then
refused with EngineOverloaded: memory never grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .stream import FrameModel, State

Array = np.ndarray


class EngineOverloaded(RuntimeError):
    """The engine has no room for more work right now."""


@dataclass
class _Request:
    audio: Array
    state: State
    future: asyncio.Future[tuple[Array, State]]
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    batches: int = 0
    rows: int = 0
    largest: int = 0
    longest_samples: int = 0  # the longest block run: what one inference's memory grows with


class MicroBatcher:
    def __init__(
        self,
        model: FrameModel,
        *,
        max_batch: int = 256,
        max_wait_ms: float = 2.0,
        max_pending: int = 4096,
        admission_timeout: float = 0.5,
    ) -> None:
        self._model = model
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000
        self._admission_timeout = admission_timeout
        self._room = asyncio.Semaphore(max_pending)
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        # One thread: onnxruntime parallelises inside a call; two calls would fight.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="viseme-infer")
        self._task: asyncio.Task[None] | None = None
        self.stats = BatchStats()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="viseme-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            request = self._queue.get_nowait()
            request.future.cancel()
        self._executor.shutdown(wait=True)

    async def run(self, audio: Array, state: State) -> tuple[Array, State]:
        """Run one stream's block [samples] with its state [1, ...]; returns logits [frames, C]."""
        try:
            await asyncio.wait_for(self._room.acquire(), self._admission_timeout)
        except TimeoutError:
            raise EngineOverloaded("viseme engine is saturated; try again shortly") from None
        try:
            future: asyncio.Future[tuple[Array, State]] = asyncio.get_running_loop().create_future()
            self._queue.put_nowait(_Request(audio, state, future))
            return await future
        finally:
            self._room.release()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = batch[0].queued_at + self._max_wait
            while len(batch) < self._max_batch:
                if self._queue.empty():
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    continue
                batch.append(self._queue.get_nowait())
            live = [r for r in batch if not r.future.done()]  # callers that gave up
            groups: dict[int, list[_Request]] = defaultdict(list)
            for request in live:
                groups[request.audio.shape[0]].append(request)
            for group in groups.values():
                try:
                    results = await loop.run_in_executor(self._executor, self._infer, group)
                except Exception as exc:  # the callers get the error, the loop goes on
                    for request in group:
                        if not request.future.done():
                            request.future.set_exception(exc)
                    continue
                for request, result in zip(group, results, strict=True):
                    if not request.future.done():
                        request.future.set_result(result)

    def _infer(self, group: list[_Request]) -> list[tuple[Array, State]]:
        audio = np.stack([r.audio for r in group])
        state = {k: np.concatenate([r.state[k] for r in group]) for k in group[0].state}
        logits, new_state = self._model.run(audio, state)
        self.stats.batches += 1
        self.stats.rows += len(group)
        self.stats.largest = max(self.stats.largest, len(group))
        self.stats.longest_samples = max(self.stats.longest_samples, audio.shape[1])
        return [
            # Copies: a view would keep the whole batch alive as long as any stream.
            (logits[i].copy(), {k: v[i : i + 1].copy() for k, v in new_state.items()})
            for i in range(len(group))
        ]
