"""The main process: `python -m homeserver.app.homeserver -c homeserver.yaml`.

With `--generate-config --server-name NAME -c FILE` it writes a new config and exits. With
`--daemonize` (or `daemonize: true`) it runs in the background and writes `pid_file`.
"""

import sys

from homeserver.app._base import base_argument_parser, fail, load_or_exit, run
from homeserver.config.generate import generate_config


def main(argv: list[str] | None = None) -> None:
    parser = base_argument_parser("Matrix homeserver: the main process")
    parser.add_argument("--generate-config", action="store_true", help="write a new config file and exit")
    parser.add_argument("--server-name", "-H", help="with --generate-config: the server name")
    parser.add_argument("--data-directory", help="with --generate-config: where data files go")
    parser.add_argument("--port", type=int, default=8008, help="with --generate-config: client port")
    parser.add_argument("--public-baseurl", help="with --generate-config: the public URL")
    parser.add_argument("--open-registration", action="store_true",
                        help="with --generate-config: let anyone register (for local testing)")
    parser.add_argument("--postgres", metavar="DSN",
                        help="with --generate-config: use PostgreSQL, e.g. 'host=127.0.0.1 user=postgres dbname=homeserver'")
    parser.add_argument("--report-stats", choices=["yes", "no"], help="accepted for compatibility; ignored")
    args = parser.parse_args(argv)

    if args.generate_config:
        if not args.server_name or len(args.config_path) != 1:
            fail("--generate-config needs --server-name NAME and exactly one -c FILE")
        try:
            postgres = dict(part.split("=", 1) for part in args.postgres.split()) if args.postgres else None
            generate_config(args.config_path[0], args.server_name, args.data_directory, args.port,
                            args.public_baseurl, args.open_registration, postgres)
        except (OSError, ValueError) as e:
            fail(str(e))
        print(f"Wrote {args.config_path[0]}; start the server with: python -m homeserver.app.homeserver -c {args.config_path[0]}")
        return

    config = load_or_exit(args.config_path)
    if not config.worker.is_main:
        fail(
            f"{config.raw.origins.get('worker_app')}: worker_app: this file configures a worker; "
            "start it with python -m homeserver.app.generic_worker"
        )

    def announce(opened: list[str]) -> None:
        port = next((listener.port for listener in config.server.listeners if "client" in listener.resources), None)
        if port is not None:
            print(f"Homeserver {config.server.server_name} is serving clients at http://localhost:{port}/", flush=True)

    run(config, config.logging.log_config, config.server.pid_file, announce,
        daemonize=args.daemonize or config.server.daemonize)


if __name__ == "__main__":
    main(sys.argv[1:])
