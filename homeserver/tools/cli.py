"""The `homeserver` admin command.

    homeserver routes --format nginx|haproxy -c homeserver.yaml -a workers/ [--listen 8080]
    homeserver routes which PATH [--method GET] -c homeserver.yaml -a workers/
    homeserver check-config -c homeserver.yaml -a workers/
"""

import argparse
import sys

from homeserver.config import ConfigError
from homeserver.tools.deployment import Deployment, load_deployment
from homeserver.tools.routes import haproxy_config, nginx_config, proxy_address, which


def _add_deployment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config-path", action="append", default=[], metavar="PATH",
                        help="the shared config file(s), as given to every process")
    parser.add_argument("-a", "--worker-configs", action="append", default=[], metavar="PATH",
                        help="a worker config file, or a directory of them; repeat for several")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homeserver", description="Tools for a homeserver deployment.")
    commands = parser.add_subparsers(dest="command", required=True)
    routes = commands.add_parser("routes", help="write the reverse-proxy config, or say who serves a path")
    routes.add_argument("which", nargs="*", metavar="which PATH", help="`which PATH`: who serves this request")
    routes.add_argument("--format", choices=["nginx", "haproxy"], default="nginx")
    routes.add_argument("--listen", default="8080", help="the proxy's listen address or port (default 8080)")
    routes.add_argument("--server-name", default="_", help="nginx server_name (default _)")
    routes.add_argument("--method", default="GET", help="with `which`: the request method")
    routes.add_argument("-o", "--output", help="write here instead of standard output")
    _add_deployment_args(routes)
    check = commands.add_parser("check-config", help="check a whole deployment's config")
    _add_deployment_args(check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.config_path:
        print("Error: give the shared config with -c/--config-path", file=sys.stderr)
        return 2
    errors: list[str] = []
    try:
        deployment = load_deployment(args.config_path, args.worker_configs, errors if args.command == "check-config" else None)
    except ConfigError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    if args.command == "routes":
        return _routes(args, deployment)
    from homeserver.tools.check_config import check_deployment

    problems = errors + check_deployment(deployment)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"OK: {len(deployment.processes)} processes, no problems found")
    return 1 if problems else 0


def _routes(args: argparse.Namespace, deployment: Deployment) -> int:
    if args.which:
        if args.which[0] != "which" or len(args.which) != 2:
            print("Error: use `homeserver routes which PATH`", file=sys.stderr)
            return 2
        endpoint, pool = which(args.which[1], args.method, deployment)
        name = endpoint.name if endpoint else "(no endpoint: the main process answers)"
        print(f"{args.method.upper()} {args.which[1]} -> {name} [{endpoint.placement if endpoint else 'main'}]")
        for process in pool.members:
            host, port = proxy_address(process) or ("?", 0)
            print(f"  {process.name} {host}:{port}" + (f" (balanced by {pool.balance})" if pool.balance != "roundrobin" else ""))
        return 0
    text = nginx_config(deployment, args.listen, args.server_name) if args.format == "nginx" else \
        haproxy_config(deployment, args.listen)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
