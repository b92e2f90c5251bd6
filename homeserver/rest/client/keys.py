"""End-to-end encryption key servlets: `/keys/upload`, `/keys/query`, `/keys/claim`,
`/keys/changes`, `/keys/device_signing/upload` and `/keys/signatures/upload`."""

from typing import Any

from homeserver.handlers.auth import LOGIN_TYPE_PASSWORD
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_json_object, parse_string


class KeyUploadServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body = parse_json_object(request, allow_empty=True)
        return 200, await self.hs.e2e_keys_handler.upload_keys(requester, body)


class KeyQueryServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body = parse_json_object(request)
        return 200, await self.hs.e2e_keys_handler.query_keys(requester, body)


class KeyClaimServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body = parse_json_object(request)
        return 200, await self.hs.e2e_keys_handler.claim_keys(body)


class KeyChangesServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        from_token = parse_string(request, "from")
        to_token = parse_string(request, "to", default=None)
        return 200, await self.hs.e2e_keys_handler.key_changes(requester.user_id, from_token, to_token)


class SigningKeyUploadServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        handler = self.hs.e2e_keys_handler
        keys = {k: v for k, v in body.items() if k != "auth"}
        # A request carrying `auth` continues a UIA session, whose stored request it completes.
        if "auth" in body or await handler.signing_keys_upload_needs_auth(requester.user_id, keys):
            result = await self.hs.auth_handler.check_ui_auth(
                [[LOGIN_TYPE_PASSWORD]], body, request.path.decode(), "POST", "reset the cross-signing keys of your account",
                requester_user_id=requester.user_id,
            )
            keys = result.params
        await handler.upload_signing_keys(requester.user_id, keys)
        return 200, {}


class SignaturesUploadServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body = parse_json_object(request)
        return 200, await self.hs.e2e_keys_handler.upload_signatures(requester.user_id, body)
