"""Running Twisted code from the test thread: one real reactor, started once per test session
in a background thread (the `run` fixture, registered in `conftest.py` so that every module
shares it: a reactor cannot be started twice), driven through `Runner`."""

import concurrent.futures
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet import defer

TIMEOUT = 30.0


class Runner:
    """Runs callables on the reactor thread; awaitables are awaited there."""

    def __init__(self, reactor: Any, thread: threading.Thread):
        self.reactor = reactor
        self.thread = thread

    def start(self, fn: Callable[[], Any]) -> "concurrent.futures.Future[Any]":
        """Schedule `fn` on the reactor and return at once; the future holds its outcome."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def go() -> None:
            try:
                result = fn()
            except BaseException as e:
                future.set_exception(e)
                return
            if not inspect.isawaitable(result):
                future.set_result(result)
                return
            d = defer.ensureDeferred(result)  # type: ignore[arg-type]
            d.addCallbacks(future.set_result, lambda f: future.set_exception(f.value))

        self.reactor.callFromThread(go)
        return future

    def __call__(self, fn: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
        """Run `fn` on the reactor and wait for its (awaited) result."""
        return self.start(fn).result(timeout)


@pytest.fixture(scope="session")
def run() -> Iterator[Runner]:
    from twisted.internet import reactor

    thread = threading.Thread(
        target=reactor.run, kwargs={"installSignalHandlers": False}, name="reactor", daemon=True
    )
    thread.start()
    runner = Runner(reactor, thread)
    assert runner(lambda: threading.current_thread() is thread)
    yield runner
    reactor.callFromThread(reactor.stop)
    thread.join(10)
