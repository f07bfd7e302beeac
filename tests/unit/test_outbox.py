"""What execution threads hand a worker's event loop (``coflux.worker.outbox``)."""

from __future__ import annotations

import threading

from coflux.models import ExecutionId
from coflux.worker import outbox
from coflux.worker.requests import PendingRequest


def _request(request_id: int) -> PendingRequest:
    return PendingRequest({"type": "wait", "request_id": request_id, "execution_id": "R:1:1"}, None)


def test_a_burst_wakes_the_loop_once_and_keeps_its_order() -> None:
    wakes: list[int] = []
    box = outbox.Outbox(lambda: wakes.append(1))
    items = [outbox.Log(ExecutionId("R:1:1"), {"message": str(i)}) for i in range(100)]
    for item in items:
        assert box.post(item)
    assert len(wakes) == 1
    assert box.take() == items
    assert box.take() == []
    box.post(outbox.Send(_request(1), None))
    assert len(wakes) == 2, "once taken, the next item wakes the loop again"


def test_posts_from_many_threads_all_arrive() -> None:
    box = outbox.Outbox(lambda: None)

    def post(base: int) -> None:
        for i in range(200):
            box.post(outbox.Withdraw(_request(base + i)))

    threads = [threading.Thread(target=post, args=(1000 * t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    taken: list[outbox.Item] = []
    while any(t.is_alive() for t in threads):
        taken.extend(box.take())
    for thread in threads:
        thread.join()
    taken.extend(box.take())
    ids = [item.request.request_id for item in taken if isinstance(item, outbox.Withdraw)]
    assert sorted(ids) == sorted(1000 * t + i for t in range(4) for i in range(200))
    for t in range(4):
        mine = [i for i in ids if 1000 * t <= i < 1000 * (t + 1)]
        assert mine == sorted(mine), "each thread's items keep their order"


def test_a_closed_outbox_refuses_items_and_returns_those_never_taken() -> None:
    box = outbox.Outbox(lambda: None)
    pending = outbox.Send(_request(1), None)
    box.post(pending)
    assert box.close() == [pending]
    assert not box.post(outbox.Send(_request(2), None))
    assert box.take() == []
