"""Micro-batching: concurrent requests share forward passes, each gets its own results, and a
request that fails does not fail the others batched with it."""
import asyncio
import time

import pytest

from headstart.serving.batcher import MicroBatcher


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_forward_passes_and_keep_their_own_results():
    calls = []

    def fn(items):
        calls.append(len(items))
        time.sleep(0.01)  # a model that takes a while: requests pile up meanwhile
        return [x * 10 for x in items]

    async def main():
        b = MicroBatcher(fn, max_batch=32, max_wait_ms=5)
        b.start()
        out = await asyncio.gather(*[b.submit([i, i + 100]) for i in range(40)])
        await b.stop()
        return out

    out = run(main())
    assert out == [[i * 10, (i + 100) * 10] for i in range(40)]
    assert len(calls) < 10 and max(calls) <= 32 + 2  # 80 items in a few passes, none much over max_batch


def test_a_lone_request_waits_about_max_wait_not_longer():
    async def main():
        b = MicroBatcher(lambda items: items, max_batch=32, max_wait_ms=20)
        b.start()
        t = time.perf_counter()
        await b.submit([1])
        dt = time.perf_counter() - t
        await b.stop()
        return dt

    assert run(main()) < 0.5


def test_a_failing_request_does_not_fail_the_ones_batched_with_it():
    def fn(items):
        if "bad" in items:
            raise ValueError("bad item")
        time.sleep(0.005)
        return [s.upper() for s in items]

    async def main():
        b = MicroBatcher(fn, max_batch=64, max_wait_ms=20)
        b.start()
        res = await asyncio.gather(b.submit(["a"]), b.submit(["bad"]), b.submit(["c"]), return_exceptions=True)
        await b.stop()
        return res

    a, bad, c = run(main())
    assert (a, c) == (["A"], ["C"]) and isinstance(bad, ValueError)


def test_stop_answers_what_is_queued_first():
    async def main():
        b = MicroBatcher(lambda items: (time.sleep(0.01), items)[1], max_batch=1, max_wait_ms=1)
        b.start()
        pending = [asyncio.ensure_future(b.submit([i])) for i in range(5)]
        await asyncio.sleep(0)
        await b.stop()
        return [p.result() for p in pending]

    assert run(main()) == [[i] for i in range(5)]


@pytest.mark.parametrize("bad", [0, -1])
def test_limits_must_be_positive(bad):
    from headstart.serving import Limits

    with pytest.raises(ValueError, match="max_items"):
        Limits(max_items=bad)
