"""`StreamChangeCache`: which entities (rooms, users) changed after a stream position, known in
memory from the writes and replication rows this process has seen, so that an incremental
sync does no database work for entities that did not change."""


class StreamChangeCache:
    def __init__(self, name: str, earliest_known: int, max_size: int = 100_000):
        self.name = name
        # Below this position the cache cannot answer: assume everything changed.
        self._earliest_known = earliest_known
        self._last_change: dict[str, int] = {}
        self._max_size = max_size

    def entity_has_changed(self, entity: str, position: int) -> None:
        if position > self._last_change.get(entity, 0):
            self._last_change[entity] = position
        if len(self._last_change) > self._max_size:
            self._evict()

    def reset(self, earliest_known: int) -> None:
        """Forget everything: the cache answers only for positions from `earliest_known` on."""
        self._earliest_known = earliest_known
        self._last_change = {}

    def all_changed(self, position: int) -> None:
        """Something up to `position` changed without saying what: answer "changed" for any
        earlier position from now on."""
        self._earliest_known = max(self._earliest_known, position)

    def last_change(self, entity: str) -> int | None:
        """The latest position at which `entity` is known to have changed, if any."""
        return self._last_change.get(entity)

    def has_entity_changed(self, entity: str, since: int) -> bool:
        if since < self._earliest_known:
            return True
        return self._last_change.get(entity, 0) > since

    def get_entities_changed(self, entities: list[str], since: int) -> list[str]:
        if since < self._earliest_known:
            return list(entities)
        return [e for e in entities if self._last_change.get(e, 0) > since]

    def _evict(self) -> None:
        """Forget the older half; the cache then answers 'changed' for anything before it."""
        ordered = sorted(self._last_change.values())
        cutoff = ordered[len(ordered) // 2]
        self._last_change = {e: p for e, p in self._last_change.items() if p > cutoff}
        self._earliest_known = max(self._earliest_known, cutoff)
