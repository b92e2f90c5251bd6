"""A real client library (matrix-nio) registers, logs in, asks whoami, lists devices, renames
one, deletes one with user-interactive auth and logs out, on both engines."""

import asyncio

import nio

from tests.harness import ServerProcess


async def _nio_session(url: str, server_name: str) -> None:
    client = nio.AsyncClient(url, "nio_user")
    try:
        registered = await client.register("nio_user", "nio password", device_name="first device")
        assert isinstance(registered, nio.RegisterResponse), registered
        assert registered.user_id == f"@nio_user:{server_name}"

        whoami = await client.whoami()
        assert isinstance(whoami, nio.WhoamiResponse), whoami
        assert whoami.user_id == f"@nio_user:{server_name}"
        assert whoami.device_id == registered.device_id

        second = nio.AsyncClient(url, f"@nio_user:{server_name}")
        logged_in = await second.login("nio password", device_name="second device")
        assert isinstance(logged_in, nio.LoginResponse), logged_in
        assert logged_in.device_id != registered.device_id

        devices = await client.devices()
        assert isinstance(devices, nio.DevicesResponse), devices
        names = {d.id: d.display_name for d in devices.devices}
        assert names == {registered.device_id: "first device", logged_in.device_id: "second device"}

        renamed = await client.update_device(logged_in.device_id, {"display_name": "renamed"})
        assert isinstance(renamed, nio.UpdateDeviceResponse), renamed

        # Deleting needs user-interactive auth: the first answer asks for it.
        first_try = await client.delete_devices([logged_in.device_id])
        assert isinstance(first_try, nio.DeleteDevicesAuthResponse), first_try
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "nio_user"},
            "password": "nio password",
            "session": first_try.session,
        }
        deleted = await client.delete_devices([logged_in.device_id], auth)
        assert isinstance(deleted, nio.DeleteDevicesResponse), deleted
        assert isinstance(await second.whoami(), nio.WhoamiError)
        await second.close()

        wrong = nio.AsyncClient(url, "nio_user")
        failed = await wrong.login("not the password")
        assert isinstance(failed, nio.LoginError) and failed.status_code == "M_FORBIDDEN"
        await wrong.close()

        logged_out = await client.logout()
        assert isinstance(logged_out, nio.LogoutResponse), logged_out
        client.access_token = registered.access_token
        assert isinstance(await client.whoami(), nio.WhoamiError)
    finally:
        await client.close()


def test_matrix_nio_account_lifecycle(server: ServerProcess) -> None:
    asyncio.run(_nio_session(server.url, server.server_name))
