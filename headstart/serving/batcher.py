"""Micro-batching: requests that arrive while the model is busy, or within ``max_wait_ms`` of
each other, run as one forward pass (up to ``max_batch`` items), so throughput under concurrent
load approaches batch throughput while a lone request waits at most a few milliseconds.

Requests announce themselves (``arriving``) when they start being read and decoded: while some
are on their way the batch stays open a little longer (up to ``HOLD`` x ``max_wait_ms``), so the
clients that a finished batch just answered join the next batch instead of trickling into small
ones."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator

HOLD = 10  # a batch waits at most this many max_wait_ms for requests still being decoded


class MicroBatcher:
    """``await submit(items)`` -> ``fn(items)``'s results for those items, computed together with
    other pending requests. ``fn`` runs on one worker thread (the model is never run twice at
    once); if a joint batch fails, each request is retried alone so one cannot fail another."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]], max_batch: int = 32, max_wait_ms: float = 5.0) -> None:
        self.fn, self.max_batch, self.max_wait = fn, int(max_batch), max_wait_ms / 1000.0
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.arriving = 0  # requests being read and decoded, not submitted yet
        self.batches = 0  # forward passes run, and the items they held (for /v1/models stats)
        self.items = 0

    def start(self) -> None:
        """Start on the running event loop (the app's lifespan does this)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headstart-model")
        self._task = self._loop.create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is not None and self._queue is not None:
            await self._queue.join()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @contextmanager
    def arrival(self) -> Iterator[None]:
        """Around a request's reading and decoding: the batch being gathered waits for it."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1

    def submit(self, items: list[Any]) -> asyncio.Future:
        """Queue ``items`` now; await the returned future for their results."""
        if not self.running or self._loop is not asyncio.get_running_loop():
            self.start()  # a client that runs each request on its own loop (test clients) gets one here
        assert self._queue is not None
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((items, fut))
        return fut

    async def _gather(self) -> list[tuple[list[Any], asyncio.Future]]:
        assert self._queue is not None
        first = await self._queue.get()
        group, n = [first], len(first[0])
        loop = asyncio.get_running_loop()
        start = loop.time()
        while n < self.max_batch:
            wait = start + (self.max_wait * HOLD if self.arriving else self.max_wait) - loop.time()
            try:
                nxt = self._queue.get_nowait() if self._queue.qsize() else await asyncio.wait_for(
                    self._queue.get(), max(0.0, min(wait, self.max_wait)))
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                if self.arriving and loop.time() < start + self.max_wait * HOLD:
                    continue
                break
            group.append(nxt)
            n += len(nxt[0])
        return group

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            group = await self._gather()
            try:
                await self._serve(loop, group)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _serve(self, loop: asyncio.AbstractEventLoop, group: list[tuple[list[Any], asyncio.Future]]) -> None:
        live = [(items, fut) for items, fut in group if not fut.cancelled()]  # clients that left
        if not live:
            return
        joint = [x for items, _ in live for x in items]
        try:
            out = await loop.run_in_executor(self._pool, self.fn, joint)
        except Exception as err:
            if len(live) == 1:
                _settle(live[0][1], exc=err)
                return
            for items, fut in live:  # isolate the request that fails
                try:
                    _settle(fut, await loop.run_in_executor(self._pool, self.fn, items))
                except Exception as e:
                    _settle(fut, exc=e)
            return
        self.batches += 1
        self.items += len(joint)
        k = 0
        for items, fut in live:
            _settle(fut, out[k:k + len(items)])
            k += len(items)


def _settle(fut: asyncio.Future, result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
