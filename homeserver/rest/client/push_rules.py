"""Push rules servlets: `/pushrules/`, `/pushrules/global/`, one rule, and a rule's
`enabled` and `actions`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_json_object, parse_string


class PushRulesServlet(RestServlet):
    """`GET /pushrules/`: every ruleset (only `global` exists)."""

    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, {"global": await self.hs.push_rules_handler.get_ruleset(requester.user_id)}


class GlobalPushRulesServlet(RestServlet):
    """`GET /pushrules/global/`: the global ruleset."""

    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.push_rules_handler.get_ruleset(requester.user_id)


class PushRuleServlet(RestServlet):
    """`/pushrules/global/{kind}/{ruleId}`: read, create or replace, delete."""

    async def on_GET(self, request: HomeserverRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.push_rules_handler.get_rule(requester.user_id, kind, rule_id)

    async def on_PUT(self, request: HomeserverRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        before = parse_string(request, "before", default=None)
        after = parse_string(request, "after", default=None)
        await self.hs.push_rules_handler.put_rule(requester.user_id, kind, rule_id, body, before, after)
        return 200, {}

    async def on_DELETE(self, request: HomeserverRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        await self.hs.push_rules_handler.delete_rule(requester.user_id, kind, rule_id)
        return 200, {}


class PushRuleAttributeServlet(RestServlet):
    """`/pushrules/global/{kind}/{ruleId}/(enabled|actions)`."""

    async def on_GET(self, request: HomeserverRequest, kind: str, rule_id: str, attribute: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.push_rules_handler.get_attribute(requester.user_id, kind, rule_id, attribute)

    async def on_PUT(self, request: HomeserverRequest, kind: str, rule_id: str, attribute: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        await self.hs.push_rules_handler.set_attribute(requester.user_id, kind, rule_id, attribute, body)
        return 200, {}
