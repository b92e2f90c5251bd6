"""A worker process: `python -m homeserver.app.generic_worker -c homeserver.yaml -c workers/NAME.yaml`.

It serves the endpoints of the route table that its `worker_listeners` resources cover and
that may run on a worker. Workers need PostgreSQL and Redis (checked when the config loads).
With `--daemonize` (or `worker_daemonize: true`) it runs in the background and writes
`worker_pid_file`.
"""

import sys

from homeserver.app._base import base_argument_parser, fail, load_or_exit, run


def main(argv: list[str] | None = None) -> None:
    parser = base_argument_parser("Matrix homeserver: a generic worker process")
    args = parser.parse_args(argv)
    config = load_or_exit(args.config_path)
    if config.worker.is_main:
        fail("no worker_app in the given config files; a worker needs its own file with worker_app and worker_name")
    run(config, config.worker.log_config or config.logging.log_config, config.worker.pid_file,
        daemonize=args.daemonize or config.worker.daemonize)


if __name__ == "__main__":
    main(sys.argv[1:])
