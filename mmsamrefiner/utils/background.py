# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Work ahead of and behind a loop, in threads, in the loop's order.

:func:`read_ahead` runs a loop's reading (files decoded, inputs prepared) in
a pool of threads ahead of the loop; :class:`BackgroundWriter` runs its
writing (results copied to the host, encoded, written atomically, recorded)
in one thread behind it.  Threads rather than processes: they share the
loop's objects (a collection's index, the refiner's device) without copying
or pickling them, and the work they take (image decoding, PIL resizing,
torch, zlib, file I/O) releases the GIL.  Both keep the loop's order, so what
is written, and in which order, does not depend on the number of threads.
:func:`overridden` changes a process-wide setting for threads that overlap.
"""
import contextlib
import queue
import threading
from collections import deque
from itertools import islice
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple, TypeVar

Item = TypeVar('Item')
Result = TypeVar('Result')


def read_ahead(load: Callable[[Item], Result], items: Iterable[Item],
               workers: int) -> Iterator[Result]:
    """``load(item)`` of each of ``items``, in their order.

    With ``workers`` > 0 up to ``2 * workers`` loads run ahead in a pool of
    that many threads; with 0 each runs when its result is asked for, in the
    caller's thread.  An exception ``load`` raises is raised here, when its
    result is reached.  Closing the iterator (or leaving the loop that
    drains it) drops the loads not started and waits for the running ones.
    """
    if workers < 0:
        raise ValueError(f'workers is a number of threads, >= 0, got {workers!r}')
    if workers == 0:
        for item in items:
            yield load(item)
        return
    from concurrent.futures import ThreadPoolExecutor
    remaining = iter(items)
    with ThreadPoolExecutor(workers, thread_name_prefix='read_ahead') as pool:
        pending = deque(pool.submit(load, item) for item in islice(remaining, 2 * workers))
        try:
            while pending:
                result = pending.popleft().result()
                for item in islice(remaining, 1):
                    pending.append(pool.submit(load, item))
                yield result
        finally:
            for future in pending:
                future.cancel()


class BackgroundWriter:
    """Runs jobs (callables without arguments) one at a time, in the order
    they are submitted, in one thread behind the caller.

    Args:
        max_pending: how many submitted jobs may wait (:meth:`submit` blocks
            beyond); 0: no thread, each job runs inside :meth:`submit`.

    The first exception a job raises (any ``BaseException``) stops the
    writing: later jobs are dropped, not run, and the exception is raised in
    the caller's thread by the next :meth:`submit` or by :meth:`drain`.  Used
    as a context manager it drains on exit, also when the caller leaves on an
    exception (an interrupt): every job submitted before is finished (its
    outputs written, then its record) or, after a job's error, dropped whole;
    the caller's exception goes on.  The thread is a daemon: a process killed
    meanwhile leaves what atomic writes leave, never a half-written file.
    """

    _STOP = object()

    def __init__(self, max_pending: int = 4, name: str = 'writer'):
        if max_pending < 0:
            raise ValueError(f'max_pending is >= 0, got {max_pending!r}')
        self._error: Optional[BaseException] = None
        self._queue: Optional[queue.Queue] = None
        self._thread: Optional[threading.Thread] = None
        if max_pending:
            self._queue = queue.Queue(max_pending)
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is self._STOP:
                return
            if self._error is None:
                try:
                    job()
                except BaseException as error:  # noqa: BLE001 - raised in the caller's thread
                    self._error = error

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` behind the caller (in the caller's thread without a
        thread); raises an earlier job's exception first."""
        self._raise_error()
        if self._thread is None:
            job()
        else:
            self._queue.put(job)

    def drain(self) -> None:
        """Wait for every submitted job, stop the thread, and raise the first
        exception a job raised."""
        if self._thread is not None:
            self._queue.put(self._STOP)
            self._thread.join()
            self._thread = None
        self._raise_error()

    def __enter__(self) -> 'BackgroundWriter':
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is None:
            self.drain()
            return
        try:
            self.drain()
        except BaseException:  # noqa: BLE001 - the caller's exception goes on
            pass


_overrides_lock = threading.Lock()
_overrides: Dict[Tuple[int, str], list] = {}  # (id(owner), name) -> [threads inside, original]


@contextlib.contextmanager
def overridden(owner: Any, name: str, value: Any):
    """``owner.name`` set to ``value`` inside, for threads that share it.

    A process-wide setting (PIL's ``Image.MAX_IMAGE_PIXELS``, say) that a
    step changes for a moment: the first thread to enter saves the original
    and sets ``value``, the last to leave restores the original, so threads
    that overlap (reader threads) never restore each other's value in place
    of the original.  Other code running meanwhile sees ``value``.
    """
    key = (id(owner), name)
    with _overrides_lock:
        entry = _overrides.get(key)
        if entry is None:
            entry = _overrides[key] = [0, getattr(owner, name)]
            setattr(owner, name, value)
        entry[0] += 1
    try:
        yield
    finally:
        with _overrides_lock:
            entry[0] -= 1
            if not entry[0]:
                del _overrides[key]
                setattr(owner, name, entry[1])
