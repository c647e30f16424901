# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""read_ahead and BackgroundWriter: the loop's order kept, errors raised in the
caller's thread, the writer drained on exit, nothing run after a failed job;
a process-wide setting overridden by overlapping threads comes back."""
import threading
import time
from types import SimpleNamespace

import pytest

from mmsamrefiner.utils.background import BackgroundWriter, overridden, read_ahead


@pytest.mark.parametrize('workers', [0, 1, 3])
def test_read_ahead_keeps_the_items_order(workers):
    def slow_for_early_items(item):
        time.sleep(0.002 * (10 - item))  # later items finish first
        return item * item

    assert list(read_ahead(slow_for_early_items, range(10), workers)) == [
        i * i for i in range(10)]


def test_read_ahead_runs_loads_in_other_threads_and_at_most_twice_workers_ahead():
    started, names = [], set()

    def load(item):
        started.append(item)
        names.add(threading.current_thread().name)
        return item

    loads = read_ahead(load, range(20), workers=2)
    assert next(loads) == 0
    time.sleep(0.05)
    assert len(started) <= 5  # the one taken and four ahead
    assert list(loads) == list(range(1, 20))
    assert threading.current_thread().name not in names


def test_read_ahead_raises_a_loads_error_at_its_place():
    def load(item):
        if item == 3:
            raise OSError('unreadable')
        return item

    got = []
    with pytest.raises(OSError, match='unreadable'):
        for item in read_ahead(load, range(6), workers=2):
            got.append(item)
    assert got == [0, 1, 2]


def test_read_ahead_refuses_a_negative_number_of_workers():
    with pytest.raises(ValueError, match='>= 0'):
        list(read_ahead(lambda item: item, [1], workers=-1))


@pytest.mark.parametrize('max_pending', [0, 1, 4])
def test_writer_runs_jobs_in_order(max_pending):
    done = []
    with BackgroundWriter(max_pending) as writer:
        for index in range(20):
            writer.submit(lambda index=index: done.append(index))
    assert done == list(range(20))


def test_writer_runs_jobs_in_another_thread():
    names = []
    with BackgroundWriter(2) as writer:
        writer.submit(lambda: names.append(threading.current_thread().name))
    assert names and names[0] != threading.current_thread().name


def test_a_jobs_error_stops_the_writing_and_is_raised_in_the_caller():
    done, release = [], threading.Event()

    def fail():
        release.wait()
        raise OSError(28, 'No space left on device')

    writer = BackgroundWriter(8)
    writer.submit(lambda: done.append(1))
    writer.submit(fail)
    writer.submit(lambda: done.append(3))  # queued behind the failure: dropped
    release.set()
    with pytest.raises(OSError, match='No space left'):
        writer.drain()
    assert done == [1]
    with pytest.raises(OSError, match='No space left'):  # and again, to a later submit
        writer.submit(lambda: done.append(4))
    assert done == [1]


def test_a_keyboard_interrupt_in_a_job_reaches_the_caller():
    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with BackgroundWriter(2) as writer:
            writer.submit(interrupt)


def test_the_writer_is_drained_when_the_caller_leaves_on_an_error():
    done = []

    def slow(index):
        time.sleep(0.01)
        done.append(index)

    with pytest.raises(KeyboardInterrupt):
        with BackgroundWriter(4) as writer:
            for index in range(3):
                writer.submit(lambda index=index: slow(index))
            raise KeyboardInterrupt  # Ctrl-C in the caller
    assert done == [0, 1, 2]  # what was submitted is finished, in order


def test_the_callers_error_wins_over_a_jobs():
    def fail():
        raise OSError('disk full')

    with pytest.raises(KeyboardInterrupt):
        with BackgroundWriter(2) as writer:
            writer.submit(fail)
            time.sleep(0.01)
            raise KeyboardInterrupt


def test_an_override_overlapping_in_two_threads_restores_the_original():
    owner = SimpleNamespace(limit=1000)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with overridden(owner, 'limit', None):
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with overridden(owner, 'limit', None):
            second_in.set()
            first_out.wait(5)
            seen.append(owner.limit)  # the first left: still overridden for this one

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [None] and owner.limit == 1000


def test_an_override_is_restored_after_an_error():
    owner = SimpleNamespace(limit=1000)
    with pytest.raises(ValueError):
        with overridden(owner, 'limit', None):
            assert owner.limit is None
            raise ValueError('decoding failed')
    assert owner.limit == 1000
