"""State resolution version 2, the algorithm of room versions 2 to 11.

Given the states of several forward extremities, the keys on which every state agrees form
the unconflicted state map; all other values, together with the auth difference (events in
the auth chain of some state but not of all), form the full conflicted set. Its power events
(power levels, join rules, create, and kicks and bans) are sorted with their conflicted auth
ancestors by the reverse topological power ordering and re-authorised one by one on top of
the unconflicted state; the remaining events are sorted by their mainline position relative
to the power levels that came out of that step and re-authorised in turn; finally the
unconflicted state is laid back on top.

Two readings follow the implementations that rooms already depend on, so that this server
reaches the same state as its peers:

- the "full auth chain" of a state set counts the state events themselves as well as their
  auth ancestors, so an event that both states hold is never part of the auth difference;
- `m.room.create` counts as a power event (it is sorted with them rather than by mainline).

Where the spec is explicit it is followed, although Synapse reads it more narrowly: the power
events are sorted together with every conflicted event in their *full* auth chain, and an
event is ordered after all of those ancestors, also when the auth links between them pass
through events outside the full conflicted set. (Synapse follows only direct auth links
between conflicted events; the two differ only when a conflicted value lies in the auth chain of
every state, as after a state reset. `power_event_graph(..., deep=False)` is that variant.)

Events are looked up in the caller's `event_map`, and fetched through `fetch_events` (in
batches, one call per generation of auth ancestors) when missing; fetched events are added
to `event_map`. There is no other I/O. Events marked rejected are never admitted to the
state and never used as auth events while re-authorising.
"""

import heapq
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence

from homeserver.events.auth import check_auth, get_user_power_level
from homeserver.events.builder import auth_types_for_event
from homeserver.events.errors import AuthError
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]
FetchEvents = Callable[[Collection[str]], Awaitable[dict[str, Event]]]

POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
_POWER_EVENT_KEYS = {POWER_LEVELS_KEY, ("m.room.join_rules", ""), ("m.room.create", "")}


class EventCache:
    """Events by id: the caller's event map in front of `fetch_events`.

    Ids that `fetch_events` did not return are remembered as unknown and not asked for
    again.
    """

    def __init__(self, event_map: dict[str, Event], fetch_events: FetchEvents) -> None:
        self.events = event_map
        self._fetch = fetch_events
        self._unknown: set[str] = set()

    async def load(self, event_ids: Iterable[str]) -> None:
        """Make sure every event of `event_ids` that can be had is in the map."""
        missing = {e for e in event_ids if e not in self.events and e not in self._unknown}
        if not missing:
            return
        found = await self._fetch(missing)
        for event_id in missing:
            event = found.get(event_id)
            if event is None:
                self._unknown.add(event_id)
            else:
                self.events[event_id] = event
        if missing - found.keys():
            logger.warning("state res: %d events could not be fetched", len(missing - found.keys()))

    def get(self, event_id: str) -> Event | None:
        """The event, or None when it is unknown (or not loaded yet)."""
        return self.events.get(event_id)

    def auth_events_of(self, event: Event) -> list[Event]:
        """The auth events of `event` that are known."""
        found = (self.events.get(a) for a in event.auth_event_ids())
        return [e for e in found if e is not None]


async def resolve_state_v2(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    event_map: dict[str, Event],
    fetch_events: FetchEvents,
) -> dict[StateKey, str]:
    """Resolve `state_sets` (each `(type, state_key) -> event id`) into one state map."""
    unconflicted, conflicted = separate(state_sets)
    if not conflicted:
        return unconflicted
    cache = EventCache(event_map, fetch_events)
    chains = await full_auth_chains(state_sets, cache)
    common = set.intersection(*chains)
    conflicted_ids = {e for ids in conflicted.values() for e in ids}
    full_conflicted = {
        e for e in conflicted_ids | (set.union(*chains) - common) if cache.get(e) is not None
    }
    # Auth links can only lead from the full conflicted set back into it through events
    # outside it when a conflicted value is also an ancestor of every state.
    deep = not conflicted_ids.isdisjoint(common)
    graph = power_event_graph(full_conflicted, cache, deep)
    power_order = reverse_topological_power_order(graph, cache)
    resolved = iterative_auth_checks(room_version, power_order, unconflicted, cache)
    sorted_power = set(power_order)
    others = [e for e in full_conflicted if e not in sorted_power]
    others = mainline_order(others, resolved.get(POWER_LEVELS_KEY), cache)
    resolved = iterative_auth_checks(room_version, others, resolved, cache)
    resolved.update(unconflicted)
    return resolved


def separate(
    state_sets: Sequence[Mapping[StateKey, str]],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """Split into the unconflicted state map and the conflicted values of each key.

    A key is conflicted when its value differs between states or some state lacks it.
    """
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    keys: set[StateKey] = set().union(*state_sets) if state_sets else set()
    for key in keys:
        values = {state.get(key) for state in state_sets}
        present = {v for v in values if v is not None}
        if len(values) == 1 and present:
            unconflicted[key] = present.pop()
        else:
            conflicted[key] = present
    return unconflicted, conflicted


async def full_auth_chains(
    state_sets: Sequence[Mapping[StateKey, str]], cache: EventCache
) -> list[set[str]]:
    """For each state, its events and all their known auth ancestors."""
    await load_auth_ancestry({e for state in state_sets for e in state.values()}, cache)
    return [ancestry(state.values(), cache) for state in state_sets]


async def load_auth_ancestry(event_ids: Iterable[str], cache: EventCache) -> None:
    """Fetch `event_ids` and their auth ancestors, one generation per fetch."""
    seen: set[str] = set()
    frontier = set(event_ids)
    while frontier:
        await cache.load(frontier)
        seen |= frontier
        parents: set[str] = set()
        for event_id in frontier:
            event = cache.get(event_id)
            if event is not None:
                parents.update(event.auth_event_ids())
        frontier = parents - seen


def ancestry(event_ids: Iterable[str], cache: EventCache) -> set[str]:
    """The known events among `event_ids` plus all their known auth ancestors."""
    result: set[str] = set()
    stack = list(event_ids)
    while stack:
        event_id = stack.pop()
        event = cache.get(event_id)
        if event_id in result or event is None:
            continue
        result.add(event_id)
        stack.extend(event.auth_event_ids())
    return result


def is_power_event(event: Event) -> bool:
    """Whether `event` could take an ability away from someone (or is the create event)."""
    if not event.is_state():
        return False
    if event.state_key_tuple in _POWER_EVENT_KEYS:
        return True
    return (
        event.type == "m.room.member"
        and event.membership in ("leave", "ban")
        and event.sender != event.state_key
    )


def power_event_graph(
    full_conflicted: set[str], cache: EventCache, deep: bool
) -> dict[str, set[str]]:
    """The power events of the full conflicted set and their conflicted auth ancestors.

    Each node maps to the nodes it descends from directly (its nearest ancestors in the
    full conflicted set). With `deep`, the walk to those ancestors may pass through
    events outside the set; otherwise it stops at them.
    """
    below = _ConflictedAncestors(full_conflicted, cache, deep)
    graph: dict[str, set[str]] = {}
    todo = [e for e in full_conflicted if is_power_event(_known(cache, e))]
    while todo:
        event_id = todo.pop()
        if event_id in graph:
            continue
        graph[event_id] = below.of(event_id)
        todo.extend(graph[event_id] - graph.keys())
    return graph


class _ConflictedAncestors:
    """Finds the nearest ancestors of an event that are in the full conflicted set."""

    def __init__(self, full_conflicted: set[str], cache: EventCache, deep: bool) -> None:
        self._full = full_conflicted
        self._cache = cache
        self._deep = deep
        self._memo: dict[str, set[str]] = {}

    def of(self, event_id: str) -> set[str]:
        """Nearest conflicted ancestors of `event_id` (which may itself be conflicted)."""
        result: set[str] = set()
        for parent in _known(self._cache, event_id).auth_event_ids():
            if parent in self._full:
                result.add(parent)
            elif self._deep and self._cache.get(parent) is not None:
                result |= self._through(parent)
        return result

    def _through(self, start: str) -> set[str]:
        """`of` for an event outside the set, memoised, walking without recursion."""
        stack = [start]
        in_progress: set[str] = set()
        while stack:
            event_id = stack[-1]
            if event_id in self._memo:
                stack.pop()
                continue
            pending = [p for p in self._unconflicted_parents(event_id) if p not in self._memo]
            if pending and event_id not in in_progress:
                in_progress.add(event_id)
                stack.extend(p for p in pending if p not in in_progress)
                continue
            self._memo[event_id] = self._combine(event_id)
            stack.pop()
        return self._memo[start]

    def _unconflicted_parents(self, event_id: str) -> list[str]:
        parents = _known(self._cache, event_id).auth_event_ids()
        return [p for p in parents if p not in self._full and self._cache.get(p) is not None]

    def _combine(self, event_id: str) -> set[str]:
        result: set[str] = set()
        for parent in _known(self._cache, event_id).auth_event_ids():
            if parent in self._full:
                result.add(parent)
            else:
                result |= self._memo.get(parent, set())
        return result


def reverse_topological_power_order(graph: dict[str, set[str]], cache: EventCache) -> list[str]:
    """Kahn's algorithm over `graph`, earliest first, taking the smallest ready event.

    Smallest means: sender with the highest power level at the event, then the lowest
    `origin_server_ts`, then the lowest event id. Events on an auth cycle (impossible
    with hashed event ids) are left out.
    """
    keys = {e: _power_sort_key(_known(cache, e), cache) for e in graph}
    waiting = {e: len(parents) for e, parents in graph.items()}
    children: dict[str, list[str]] = {}
    for event_id, parents in graph.items():
        for parent in parents:
            children.setdefault(parent, []).append(event_id)
    ready = [(keys[e], e) for e, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        _, event_id = heapq.heappop(ready)
        ordered.append(event_id)
        for child in children.get(event_id, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (keys[child], child))
    return ordered


def _power_sort_key(event: Event, cache: EventCache) -> tuple[int, int, str]:
    auth_map = {a.state_key_tuple: a for a in cache.auth_events_of(event) if a.is_state()}
    level = get_user_power_level(event.sender, auth_map)
    return (-int(level), event.origin_server_ts, event.event_id)


def iterative_auth_checks(
    room_version: RoomVersion,
    event_ids: Iterable[str],
    base_state: Mapping[StateKey, str],
    cache: EventCache,
) -> dict[StateKey, str]:
    """Apply each event in turn to a copy of `base_state` if the auth rules allow it."""
    state = dict(base_state)
    for event_id in event_ids:
        event = cache.get(event_id)
        if event is None or event.rejected_reason is not None or not event.is_state():
            continue
        try:
            check_auth(room_version, event, _auth_events_for(room_version, event, state, cache))
        except AuthError as e:
            logger.debug("state res: %s fails auth: %s", event_id, e)
            continue
        state[event.state_key_tuple] = event_id
    return state


def _auth_events_for(
    room_version: RoomVersion, event: Event, state: Mapping[StateKey, str], cache: EventCache
) -> dict[StateKey, Event]:
    """The event's own unrejected auth events, overridden by the state where it has them."""
    auth_events = {
        a.state_key_tuple: a
        for a in cache.auth_events_of(event)
        if a.rejected_reason is None and a.is_state()
    }
    wanted = auth_types_for_event(
        room_version, event.type, event.sender, event.state_key, event.content
    )
    for key in wanted:
        current = cache.get(state[key]) if key in state else None
        if current is not None and current.rejected_reason is None:
            auth_events[key] = current
    return auth_events


def mainline_order(
    event_ids: Collection[str], power_levels_id: str | None, cache: EventCache
) -> list[str]:
    """Sort by mainline position relative to `power_levels_id` (furthest back first),
    then `origin_server_ts`, then event id."""
    if not event_ids:
        return []
    mainline: dict[str, int] = {}
    current = power_levels_id
    while current is not None and current not in mainline and cache.get(current) is not None:
        mainline[current] = len(mainline)
        current = _power_levels_cited(_known(cache, current), cache)
    positions = _MainlinePositions(mainline, cache)

    def key(event_id: str) -> tuple[int, int, str]:
        event = _known(cache, event_id)
        return (-positions.of(event), event.origin_server_ts, event_id)

    return sorted(event_ids, key=key)


class _MainlinePositions:
    """Mainline positions of events, remembering those of the power levels walked past."""

    def __init__(self, mainline: dict[str, int], cache: EventCache) -> None:
        self._known = dict(mainline)
        self._beyond = len(mainline)  # stands for "not on the mainline at all"
        self._cache = cache

    def of(self, event: Event) -> int:
        """Index on the mainline of the first power levels event in `event`'s chain."""
        walked: list[str] = []
        current = _power_levels_cited(event, self._cache)
        while current is not None and current not in self._known and current not in walked:
            walked.append(current)
            current = _power_levels_cited(_known(self._cache, current), self._cache)
        position = self._beyond if current is None else self._known.get(current, self._beyond)
        for power_levels_id in walked:
            self._known[power_levels_id] = position
        return position


def _power_levels_cited(event: Event, cache: EventCache) -> str | None:
    """The id of the known `m.room.power_levels` event among `event`'s auth events."""
    for auth_event in cache.auth_events_of(event):
        if auth_event.is_state() and auth_event.state_key_tuple == POWER_LEVELS_KEY:
            return auth_event.event_id
    return None


def _known(cache: EventCache, event_id: str) -> Event:
    event = cache.get(event_id)
    if event is None:
        raise KeyError(f"state res: event {event_id} is not loaded")
    return event
