"""The user directory: keeping each local user's search words current with their profile,
and `/user_directory/search` over the users the searcher may see."""

import re
import unicodedata
from typing import TYPE_CHECKING, Any

from homeserver.storage.stores.profiles import Profile

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Letters and digits; everything else (punctuation, '_', '@', ':', spaces) separates words.
_WORD_RE = re.compile(r"[^\W_]+")
MAX_LIMIT = 50


def words_of(text: str) -> list[str]:
    """The search words of `text`: case-folded and NFKC-normalised runs of letters and digits."""
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text.casefold()))


def search_text(user_id: str, displayname: str | None) -> str:
    """What the index stores for a user: every word of the id and display name, each with a
    space before it, so that `LIKE '% word%'` finds word prefixes."""
    return " " + " ".join(words_of(user_id) + words_of(displayname or "")) + " "


class UserDirectoryHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.user_directory
        self.config = hs.config.user_directory

    async def on_profile_changed(self, user_id: str, profile: Profile) -> None:
        await self.store.update_search_text(user_id, search_text(user_id, profile.displayname))

    async def search(self, searcher: str, term: str, limit: int) -> dict[str, Any]:
        """Users whose id or display name has words starting with every word of `term`,
        among those sharing a room with the searcher or in public rooms (or everyone, with
        `search_all_users`)."""
        limit = max(0, min(limit, MAX_LIMIT))
        words = words_of(term)
        if not self.config.enabled or not words:
            return {"results": [], "limited": False}
        entries = await self.store.search(searcher, words, limit + 1, self.config.search_all_users)
        results = []
        for entry in entries[:limit]:
            result = {"user_id": entry.user_id}
            if entry.display_name is not None:
                result["display_name"] = entry.display_name
            if entry.avatar_url is not None:
                result["avatar_url"] = entry.avatar_url
            results.append(result)
        return {"results": results, "limited": len(entries) > limit}
