"""Faults under load (docs/reliability.md): a real deployment (main, the event persister
`persister1`, the client workers `worker_a` and `worker_b`, a private Redis and a private
PostgreSQL cluster) serves a bounded load of sends and long-poll syncs while one fault is
injected: PostgreSQL restarted, Redis restarted, the persister killed, the main process
restarted, a worker paused. Afterwards nothing accepted is lost or duplicated, no sync token went
backwards, every process catches up, and every failure a client saw was clean and retryable.

Each test prints its figures (`pytest -s` shows them)."""

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import requests

from homeserver.tokens import StreamToken
from tests.harness import Client
from tests.private_postgres import PrivatePostgres, private_postgres
from tests.replication_helpers import (
    NO_PRESENCE,
    Deployment,
    PrivateRedis,
    create_room,
    deployment,
    join,
    keep_logs,
    message_bodies,
    new_user,
    on,
    room_history,
    send_text,
    sync_body,
    timeline_bodies,
    wait_until,
)
from tests.test_replication_faults import CLIENT_TIMEOUT, assert_all_readable_everywhere

# Statuses a client may simply retry, whatever the body (as long as it is no traceback).
RETRYABLE = (429, 502, 503, 504)
# Every thread stops by itself after this long, whatever the test does.
THREAD_DEADLINE = 60.0
MAX_MESSAGES = 150
SEND_PAUSE = 0.1
RETRY_PAUSE = 0.3
SYNC_TIMEOUT_MS = 2000
# Load before the fault, and after it is healed.
WARMUP = 2.0
AFTERMATH = 4.0
CATCH_UP_BOUND = 20.0
# How long PostgreSQL and the persister stay down: longer than the replication client's own
# retries (about 3 s), so that clients see the failures and retry.
PG_DOWN = 3.0
PERSISTER_DOWN = 5.0


@dataclass
class Answer:
    """One HTTP request of the load and what came back (status None: no answer at all)."""

    what: str
    status: int | None
    text: str
    parsed: Any
    seconds: float
    at: float
    error: str | None = None
    retry_after: str | None = None


def request(what: str, call: Callable[[], requests.Response]) -> Answer:
    start = time.monotonic()
    try:
        resp = call()
    except requests.RequestException as e:
        now = time.monotonic()
        return Answer(what, None, "", None, now - start, now, repr(e))
    try:
        parsed = resp.json()
    except ValueError:
        parsed = None
    now = time.monotonic()
    return Answer(what, resp.status_code, resp.text, parsed, now - start, now,
                  retry_after=resp.headers.get("Retry-After"))


def unclean(answer: Answer) -> str | None:
    """Why a failed answer is not a clean, retryable failure (None when it is)."""
    if answer.status is None:
        return f"no answer after {answer.seconds:.1f}s: {answer.error}"
    if answer.seconds >= CLIENT_TIMEOUT:
        return f"took {answer.seconds:.1f}s"
    if "Traceback" in answer.text:
        return f"{answer.status} with a traceback: {answer.text[:300]}"
    if answer.status in RETRYABLE:
        return None
    parsed = answer.parsed
    matrix = (
        isinstance(parsed, dict)
        and isinstance(parsed.get("errcode"), str)
        and isinstance(parsed.get("error"), str)
    )
    if answer.status >= 500 and matrix:
        return None
    return f"{answer.status} is not a clean retryable error: {answer.text[:300]}"


class LoadThread(threading.Thread):
    """A thread of the load: stops by itself at its deadline, or earlier when told to."""

    def __init__(self, label: str):
        super().__init__(daemon=True, name=label)
        self.label = label
        self.deadline = time.monotonic() + THREAD_DEADLINE
        self.stopping = threading.Event()
        self.answers: list[Answer] = []

    def over(self) -> bool:
        return self.stopping.is_set() or time.monotonic() > self.deadline

    def stop(self) -> None:
        self.stopping.set()
        self.join(CLIENT_TIMEOUT + 10)
        assert not self.is_alive(), f"{self.label} is stuck"

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]


class RetryingSender(LoadThread):
    """Sends numbered messages (at most MAX_MESSAGES) into one room through one process; a
    failed send is retried with the same transaction id, so a retry cannot duplicate it."""

    def __init__(self, client: Client, room: str, label: str):
        super().__init__(label)
        self.client = client
        self.room = room
        self.accepted: dict[str, str] = {}  # body -> event id
        self.retried: set[str] = set()
        self.given_up: list[str] = []

    def run(self) -> None:
        for i in range(MAX_MESSAGES):
            if self.over():
                return
            self.send(f"{self.label}-{i:03d}")
            time.sleep(SEND_PAUSE)

    def send(self, body: str) -> None:
        for attempt in range(1000):
            answer = request(
                body, lambda: send_text(self.client, self.room, body, txn=body, timeout=CLIENT_TIMEOUT)
            )
            self.answers.append(answer)
            if answer.status == 200:
                self.accepted[body] = answer.parsed["event_id"]
                return
            if attempt == 0:
                self.retried.add(body)
            if time.monotonic() > self.deadline:
                self.given_up.append(body)
                return
            time.sleep(RETRY_PAUSE)

    def first_success_after(self, moment: float) -> float | None:
        return next((a.at for a in self.answers if a.status == 200 and a.at >= moment), None)


class Syncer(LoadThread):
    """Incremental long-poll syncs of one user through one process, recording every
    next_batch and every message it delivered."""

    def __init__(self, client: Client, room: str, label: str):
        super().__init__(label)
        self.client = client
        self.room = room
        self.tokens: list[str] = []
        self.backwards: list[str] = []
        self.initial: list[str] = []
        self.delivered: list[str] = []
        self.limited = 0

    def run(self) -> None:
        since: str | None = None
        while not self.over():
            params: dict[str, Any] = {"filter": NO_PRESENCE, "timeout": 0 if since is None else SYNC_TIMEOUT_MS}
            if since is not None:
                params["since"] = since
            answer = request("sync", lambda params=params: self.sync(params))  # type: ignore[misc]
            self.answers.append(answer)
            if answer.status != 200:
                time.sleep(RETRY_PAUSE)
                continue
            since = self.advance(answer.parsed)

    def sync(self, params: dict[str, Any]) -> requests.Response:
        return self.client.session.get(
            f"{self.client.base_url}/_matrix/client/v3/sync",
            params=params,
            headers={"Authorization": f"Bearer {self.client.access_token}"},
            timeout=CLIENT_TIMEOUT,
        )

    def advance(self, body: dict[str, Any]) -> str:
        token = str(body["next_batch"])
        if self.tokens:
            went_back = behind(StreamToken.parse(token), StreamToken.parse(self.tokens[-1]))
            if went_back:
                self.backwards.append(f"{self.tokens[-1]} -> {token} ({', '.join(went_back)})")
        self.tokens.append(token)
        if len(self.tokens) == 1:  # the initial sync's timeline is history, not news
            self.initial = timeline_bodies(body, self.room)
            return token
        self.delivered += timeline_bodies(body, self.room)
        timeline = body.get("rooms", {}).get("join", {}).get(self.room, {}).get("timeline", {})
        self.limited += bool(timeline.get("limited"))
        return token

    def drain(self) -> None:
        """After the load: incremental syncs without waiting until nothing new comes."""
        for _ in range(20):
            before = len(self.delivered)
            answer = request("sync", lambda: self.sync(
                {"filter": NO_PRESENCE, "timeout": 0, "since": self.tokens[-1]}))
            assert answer.status == 200, f"{self.label}: {answer.status} {answer.text[:300]}"
            self.advance(answer.parsed)
            if len(self.delivered) == before:
                return


def behind(new: StreamToken, old: StreamToken) -> list[str]:
    """The streams whose position in `new` is before that in `old`."""
    return [f.name for f in fields(StreamToken) if getattr(new, f.name) < getattr(old, f.name)]


@dataclass
class Figures:
    fault: str
    requests: int = 0
    messages: int = 0
    succeeded: int = 0
    retried: int = 0
    clean_failures: int = 0
    unclean_failures: int = 0
    lost: int = 0
    duplicated: int = 0
    syncs: int = 0
    backwards_tokens: int = 0
    recovery_seconds: float = 0.0
    catch_up_seconds: float = 0.0
    slowest_send: float = 0.0
    with_retry_after: int = 0
    failure_statuses: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"FAULT {self.fault}: requests {self.requests} (sends + syncs), messages {self.messages},"
            f" succeeded {self.succeeded}, retried {self.retried}, clean failures"
            f" {self.clean_failures} {self.failure_statuses} ({self.with_retry_after} with"
            f" Retry-After), unclean {self.unclean_failures},"
            f" lost {self.lost}, duplicated {self.duplicated}, syncs {self.syncs}, backwards"
            f" tokens {self.backwards_tokens}, recovery {self.recovery_seconds:.1f}s,"
            f" catch-up {self.catch_up_seconds:.1f}s, slowest send {self.slowest_send:.1f}s"
        )


@dataclass
class Scene:
    """The deployment under load: its users, room and load threads."""

    d: Deployment
    pg: PrivatePostgres
    alice: Client
    bob: Client
    room: str
    senders: list[RetryingSender]
    syncers: list[Syncer]

    @property
    def threads(self) -> list[LoadThread]:
        return [*self.senders, *self.syncers]


@contextmanager
def scene(fault: str) -> Iterator[Scene]:
    """The four processes on a private PostgreSQL and Redis, two members of a room, and the
    load threads (not started)."""
    with (
        private_postgres() as pg,
        deployment(f"load-{fault}", redis=True, db=pg.db_config()) as d,
    ):
        for name in ("persister1", "worker_a", "worker_b"):
            d.add_worker(name)
        d.shared["stream_writers"] = {"events": ["persister1"]}
        d.start_all()
        try:
            yield populate(d, pg, fault)
        except BaseException:
            target = keep_logs(d, f"{fault}-pg")
            if os.path.exists(pg.log_path):
                shutil.copy(pg.log_path, os.path.join(target, "postgres.log"))
            raise


def populate(d: Deployment, pg: PrivatePostgres, fault: str) -> Scene:
    alice = new_user(d.url("worker_a"), f"{fault}a")
    bob = new_user(d.url("worker_b"), f"{fault}b")
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    a, b = d.url("worker_a"), d.url("worker_b")
    senders = [
        RetryingSender(alice, room, "alice@a"),
        RetryingSender(bob, room, "bob@b"),
        RetryingSender(on(b, alice), room, "alice@b"),
    ]
    syncers = [Syncer(on(a, alice), room, "sync-alice@a"), Syncer(bob, room, "sync-bob@b"),
               Syncer(on(a, bob), room, "sync-bob@a")]
    return Scene(d, pg, alice, bob, room, senders, syncers)


def run_under_load(s: Scene, inject: Callable[[], None]) -> tuple[float, float]:
    """Start the load, inject the fault (`inject` returns once it is healed), keep the load
    going a while, stop it; returns when the fault was injected and when it was healed."""
    for thread in s.threads:
        thread.start()
    time.sleep(WARMUP)
    assert all(t.answers for t in s.senders), "no send answered during the warm-up"
    assert all(a.status == 200 for t in s.threads for a in t.answers), "load unhealthy"
    injected = time.monotonic()
    inject()
    healed = time.monotonic()
    time.sleep(AFTERMATH)
    for thread in s.threads:
        thread.stop()
    return injected, healed


def count(s: Scene, fault: str, healed: float) -> tuple[Figures, list[str], list[str]]:
    """The figures of the load, the unclean failures and the backwards tokens."""
    figures = Figures(fault)
    answers = [a for t in s.threads for a in t.answers]
    failures = [a for a in answers if a.status != 200]
    problems = [f"{a.what}: {why}" for a in failures if (why := unclean(a))]
    backwards = [f"{t.label}: {b}" for t in s.syncers for b in t.backwards]
    figures.requests = len(answers)
    figures.syncs = sum(len(t.answers) for t in s.syncers)
    figures.messages = sum(len(t.accepted) + len(t.given_up) for t in s.senders)
    figures.succeeded = sum(len(t.accepted) for t in s.senders)
    figures.retried = sum(len(t.retried) for t in s.senders)
    figures.slowest_send = max((a.seconds for t in s.senders for a in t.answers), default=0.0)
    figures.unclean_failures = len(problems)
    figures.clean_failures = len(failures) - len(problems)
    figures.with_retry_after = sum(a.retry_after is not None for a in failures)
    for a in failures:
        figures.failure_statuses[str(a.status)] = figures.failure_statuses.get(str(a.status), 0) + 1
    figures.backwards_tokens = len(backwards)
    recovered = [t.first_success_after(healed) for t in s.senders]
    figures.recovery_seconds = max((r - healed if r else float("inf")) for r in recovered)
    return figures, problems, backwards


def check(s: Scene, fault: str, healed: float) -> Figures:
    """Everything the fault must not have broken; the figures."""
    figures, problems, backwards = count(s, fault, healed)
    accepted = {body: event_id for t in s.senders for body, event_id in t.accepted.items()}
    stopped = time.monotonic()
    lost, duplicated = wait_for_history(s, accepted)
    figures.lost, figures.duplicated = len(lost), len(duplicated)
    try:
        assert not problems, f"unclean failures: {problems[:10]}"
        assert not backwards, f"sync tokens went backwards: {backwards[:10]}"
        assert not lost, f"accepted but not in the room: {lost[:20]}"
        assert not duplicated, f"duplicated: {duplicated[:20]}"
        assert not [b for t in s.senders for b in t.given_up], "sends never accepted"
        assert_syncs_delivered_once(s, accepted)
        for member in (s.alice, s.bob):
            assert_all_readable_everywhere(s.d, member, {s.room: accepted}, timeout=CATCH_UP_BOUND)
        assert_syncs_caught_up(s)
        figures.catch_up_seconds = time.monotonic() - stopped
    finally:
        print_details(s, figures)
    assert figures.recovery_seconds < CATCH_UP_BOUND, "a sender never recovered"
    return figures


def assert_syncs_delivered_once(s: Scene, accepted: dict[str, str]) -> None:
    """Each syncer, drained, delivered each message at most once, and every accepted one
    unless its timeline had a gap (`limited`)."""
    in_room = set(message_bodies(room_history(s.alice, s.room)))
    for t in s.syncers:
        t.drain()
        seen = t.initial + t.delivered
        repeated = sorted({b for b in seen if seen.count(b) > 1})
        assert not repeated, f"{t.label} delivered messages twice: {repeated[:10]}"
        assert set(seen) <= in_room, f"{t.label} delivered what the room lacks"
        if not t.limited:
            missed = sorted(set(accepted) - set(seen))
            assert not missed, f"{t.label}'s syncs never delivered {missed[:10]}"


def print_details(s: Scene, figures: Figures) -> None:
    print()
    for t in s.senders:
        failed = [(a.status, round(a.seconds, 1)) for a in t.failures()]
        print(f"  {t.label}: {len(t.answers)} sends, {len(t.accepted)} accepted,"
              f" {len(t.retried)} retried, failures {failed[:12]}")
    for sy in s.syncers:
        print(f"  {sy.label}: {len(sy.answers)} syncs, {len(sy.failures())} failed,"
              f" {len(sy.delivered)} messages delivered, {sy.limited} limited timelines,"
              f" last token {sy.tokens[-1:]}")
    failures = [a for t in s.threads for a in t.failures()]
    if failures:
        print(f"  first failure: {failures[0].status} Retry-After {failures[0].retry_after}"
              f" {failures[0].text[:200]!r}")
    print(figures.line())

def wait_for_history(s: Scene, accepted: dict[str, str]) -> tuple[list[str], list[str]]:
    """Accepted messages missing from the room (as read through the main process), and bodies
    present more than once, once the history has them all or the bound has passed."""
    reader = on(s.d.url("main"), s.alice)
    result: tuple[list[str], list[str]] = ([], [])

    def complete() -> bool:
        nonlocal result
        history = room_history(reader, s.room)
        bodies = message_bodies(history)
        ids = {e["content"].get("body"): e["event_id"] for e in history if e["type"] == "m.room.message"}
        result = (
            sorted(b for b, event_id in accepted.items() if ids.get(b) != event_id),
            sorted({b for b in bodies if bodies.count(b) > 1}),
        )
        return not result[0] and not result[1]

    wait_until(complete, CATCH_UP_BOUND, interval=0.5)
    return result


def assert_syncs_caught_up(s: Scene) -> None:
    """A fresh sync of each member through each process ends with the room's last message."""
    last = message_bodies(room_history(s.alice, s.room))[-1]
    for name in s.d.processes:
        for member in (s.alice, s.bob):
            def latest(name: str = name, member: Client = member) -> bool:
                return timeline_bodies(sync_body(on(s.d.url(name), member), filter=NO_PRESENCE), s.room)[-1:] == [last]

            assert wait_until(latest, CATCH_UP_BOUND, interval=0.5), f"{name}'s sync lacks {last}"


def pause(d: Deployment, name: str, seconds: float) -> None:
    """SIGSTOP the process, wait, SIGCONT (always)."""
    process = d.processes[name].process
    assert process is not None and process.poll() is None
    os.kill(process.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(process.pid, signal.SIGCONT)


def run_fault(fault: str, inject: Callable[[Scene], None]) -> Figures:
    with scene(fault) as s:
        _, healed = run_under_load(s, lambda: inject(s))
        return check(s, fault, healed)


def test_postgres_restarted_under_load() -> None:
    run_fault("postgres-restart", lambda s: s.pg.restart(down_for=PG_DOWN))


def test_redis_restarted_under_load() -> None:
    def inject(s: Scene) -> None:
        redis: PrivateRedis = s.d.redis  # type: ignore[attr-defined]
        redis.kill()
        time.sleep(2.0)
        redis.start()

    run_fault("redis-restart", inject)


def test_event_persister_killed_under_load() -> None:
    def inject(s: Scene) -> None:
        s.d.kill("persister1")
        time.sleep(PERSISTER_DOWN)
        s.d.start("persister1")

    run_fault("persister-kill", inject)


def test_main_process_restarted_under_load() -> None:
    def inject(s: Scene) -> None:
        s.d.restart("main")

    run_fault("main-restart", inject)


def test_worker_paused_under_load() -> None:
    run_fault("worker-pause", lambda s: pause(s.d, "worker_a", 5.0))


def test_paused_persister_answers_within_deadline() -> None:
    """A persister that accepts connections but never answers (SIGSTOP) must not hold a send
    past the client's timeout: the replication call gives up at its deadline with a clean
    503, and the retry (same transaction id) finds the event once the persister resumes."""
    from homeserver.replication.http_client import CALL_DEADLINE_SECONDS

    with scene("persister-pause") as s:
        process = s.d.processes["persister1"].process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)
        try:
            answer = request("paused", lambda: send_text(s.alice, s.room, "paused", txn="paused",
                                                         timeout=CLIENT_TIMEOUT))
        finally:
            os.kill(process.pid, signal.SIGCONT)
        print(f"\n  send to a paused persister: {answer.status} after {answer.seconds:.1f}s {answer.text[:200]}")
        assert answer.status == 503 and unclean(answer) is None, answer
        assert answer.seconds < CALL_DEADLINE_SECONDS + 3
        # The persister still persists the first attempt once it runs again; the retry then
        # returns that very event, and the room holds it once.
        assert wait_until(lambda: "paused" in message_bodies(room_history(s.alice, s.room)), 10)
        retry = send_text(s.alice, s.room, "paused", txn="paused")
        assert retry.status_code == 200, retry.text
        history = room_history(s.alice, s.room)
        assert [e["event_id"] for e in history if e["content"].get("body") == "paused"] == [
            retry.json()["event_id"]
        ]
