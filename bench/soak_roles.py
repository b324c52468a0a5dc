"""The soak's roles: each runs its clients' threads in one process until told to stop."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

from soak_load import Recorder, Target, launcher, reporter
from soak_lookups import looker, prober

ROLES: dict[str, Callable[..., None]] = {
    "launch": launcher,
    "report": reporter,
    "lookup": looker,
    "probe": prober,
}


def run_role(
    role: str,
    threads: int,
    target: Target,
    stop: Any,
    results: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """Run one role's threads until the stop event is set; put the results on the queue."""
    rec = Recorder(target.t0)
    local_stop = threading.Event()
    collected: list[Any] = []
    extra: tuple[Any, ...] = (collected,) if role in ("launch", "report") else ()
    workers = [
        threading.Thread(target=_guarded, args=(ROLES[role], target, rec, local_stop, n, *extra))
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    stop.wait()
    local_stop.set()
    for worker in workers:
        worker.join()
    results.put({"role": role, "samples": rec.samples, "problems": rec.problems,
                 "collected": collected})  # fmt: skip


def _guarded(function: Callable[..., None], target: Target, rec: Recorder, *args: Any) -> None:
    """Run a client; a crash of the load generator itself is a problem, not a silent stop."""
    try:
        function(target, rec, *args)
    except Exception as exc:  # the soak must report it, whatever it is
        rec.note(f"load generator {function.__name__} crashed: {exc!r}")
        raise
