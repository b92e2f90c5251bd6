"""`homeserver check-config`: the mistakes that a single process cannot see, found across a
whole deployment, each reported as `file: key: problem`. (Each file's own keys were already
checked when the deployment was loaded.)"""

import ipaddress

from homeserver.config.workers import MAIN_INSTANCE
from homeserver.tools.deployment import Deployment, Process


def _file(process: Process) -> str:
    return process.worker_file or process.files[0]


def _shared_file(deployment: Deployment) -> str:
    return deployment.main.files[0]


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def check_deployment(deployment: Deployment) -> list[str]:
    problems: list[str] = []
    shared = deployment.shared
    shared_file = _shared_file(deployment)
    first_with_name: dict[str, Process] = {}
    for process in deployment.processes:
        first = first_with_name.setdefault(process.name, process)
        if first is not process:
            problems.append(f"{_file(process)}: worker_name: {process.name!r} is already the name of {_file(first)}")
    for stream, writers in sorted(shared.worker.stream_writers.items()):
        for writer in writers:
            if writer == MAIN_INSTANCE:
                continue
            if deployment.get(writer) is None:
                problems.append(f"{shared_file}: stream_writers.{stream}: {writer!r} is not one of the workers given")
            elif shared.worker.location_of(writer) is None:
                problems.append(f"{shared_file}: stream_writers.{stream}: {writer!r} is missing from instance_map")
    problems += _check_legacy_apps(deployment)
    problems += _check_instance_lists(deployment)
    problems += _check_ports(deployment)
    problems += _check_replication_listeners(deployment)
    problems += _check_instance_map(deployment)
    return problems


# Legacy worker apps that only work when the shared config hands them their job, as Synapse
# requires: app -> (shared key, the value it needs or None for "names this worker", hint).
LEGACY_APP_NEEDS: dict[str, tuple[str, object, str]] = {
    "user_dir": ("update_user_directory_from_worker", None, "name this worker there"),
    "pusher": ("start_pushers", False, "set it to false (or list the worker in pusher_instances)"),
    "federation_sender": ("send_federation", False, "set it to false (or list the worker in federation_sender_instances)"),
    "appservice": ("notify_appservices_from_worker", None, "name this worker there"),
    "media_repository": ("enable_media_repo", False, "set it to false on the main process"),
}
# Shared settings that list instances, each of which must be a configured worker.
INSTANCE_LIST_KEYS = ("pusher_instances", "federation_sender_instances")
INSTANCE_NAME_KEYS = ("run_background_tasks_on", "update_user_directory_from_worker", "notify_appservices_from_worker",
                      "media_instance_running_background_jobs")


def _check_legacy_apps(deployment: Deployment) -> list[str]:
    problems = []
    raw = deployment.shared.raw
    for process in deployment.workers:
        app = process.config.worker.worker_app or ""
        if app not in LEGACY_APP_NEEDS:
            continue
        key, needed, hint = LEGACY_APP_NEEDS[app]
        value = raw.get(key)
        if needed is None:
            ok = value == process.name
        else:
            list_key = {"pusher": "pusher_instances", "federation_sender": "federation_sender_instances"}.get(app)
            ok = value == needed or (list_key is not None and process.name in (raw.get(list_key) or []))
        if not ok:
            problems.append(f"{_shared_file(deployment)}: {key}: the {app} worker {process.name!r} does nothing"
                            f" unless this is set: {hint}")
    return problems


def _check_instance_lists(deployment: Deployment) -> list[str]:
    problems = []
    raw = deployment.shared.raw
    for key in INSTANCE_LIST_KEYS:
        for index, name in enumerate(raw.get(key) or []):
            if deployment.get(name) is None:
                problems.append(f"{_shared_file(deployment)}: {key}[{index}]: {name!r} is not one of the workers given")
    for key in INSTANCE_NAME_KEYS:
        name = raw.get(key)
        if isinstance(name, str) and deployment.get(name) is None:
            problems.append(f"{_shared_file(deployment)}: {key}: {name!r} is not one of the workers given")
    return problems


def _check_ports(deployment: Deployment) -> list[str]:
    """Two processes cannot listen on one port (unless on different specific addresses)."""
    bound: list[tuple[int, str, Process]] = []
    for process in deployment.processes:
        for listener in process.listeners:
            for address in listener.bind_addresses or ["0.0.0.0"]:
                bound.append((listener.port, "*" if address in ("0.0.0.0", "::", "") else address, process))
    problems = []
    reported: set[tuple[str, str, int]] = set()
    for index, (port, address, process) in enumerate(bound):
        for other_port, other_address, other in bound[:index]:
            same_port = port == other_port and other is not process
            overlapping = address == other_address or "*" in (address, other_address)
            key = (other.name, process.name, port)
            if same_port and overlapping and key not in reported:
                reported.add(key)
                problems.append(f"{_file(process)}: listeners: port {port} is also used by {other.name}")
    return problems


def _check_replication_listeners(deployment: Deployment) -> list[str]:
    if deployment.shared.worker.replication_secret:
        return []
    problems = []
    for process in deployment.processes:
        for listener in process.listeners:
            if "replication" in listener.resources and not all(_is_loopback(a) for a in listener.bind_addresses):
                problems.append(
                    f"{_file(process)}: listeners: the replication listener on port {listener.port} is reachable"
                    " beyond this host but worker_replication_secret is not set"
                )
    return problems


def _check_instance_map(deployment: Deployment) -> list[str]:
    problems = []
    shared = deployment.shared
    for name in shared.worker.instance_map:
        process = deployment.get(name)
        location = shared.worker.location_of(name)
        if process is None:
            problems.append(f"{_deployment_file(deployment)}: instance_map.{name}: no such process in this deployment")
            continue
        ports = {listener.port for listener in process.listeners if "replication" in listener.resources}
        if location is not None and location.port not in ports:
            problems.append(
                f"{_deployment_file(deployment)}: instance_map.{name}: port {location.port} is not a listener of"
                f" {name} with the `replication` resource"
            )
    return problems


def _deployment_file(deployment: Deployment) -> str:
    return _shared_file(deployment)
