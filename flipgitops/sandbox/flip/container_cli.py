"""`flip-standin-docker`: the container CLI a sandbox trust host runs instead of `docker`.

    flip-standin-docker --daemon-dir DIR [--world FILE] <docker args…>

DIR holds one host's daemon state (daemon.py). The commands are exactly those FLIP's
trust/Makefile@0046dc28 and a careful operator run (create-networks, up-trust, down-trust;
scripts/onboard_onprem_trust.py@4aa1635b's swarm check):

    version · info [--format T] · swarm init|leave · network create|inspect|rm|ls
    ps · stop NAME… · compose [--env-file F]… [--project-directory D] -f A [-f B…] -p P
        up -d [--pull P] [--remove-orphans] [--no-deps] [--force-recreate] [SERVICE…]
        ps [--format json] [-a] [-q] [--services] [SERVICE…]
        logs [--no-color] [--since X] [--until X] [--tail N] [-t] [--no-log-prefix] [SERVICE…]
        config --hash '*'|SERVICE[,…] | --services | -q
        stop [SERVICE…] · down [--remove-orphans] [-v] · version [--short]

`compose up` reads the files as compose v2 does (compose.py) and refuses, with nothing
recorded, what Docker would refuse (an external network that does not exist, a file mount
whose source is missing, a GPU reservation on a host without GPUs, a host port already
taken), plus two refusals of its own, on purpose: a variable with no default that is unset or
empty (compose would blank it; FLIP's services crash on blank values), and an FL kit mount
whose source is missing (Docker would create an empty root-owned dir and the client would
crash-loop). The `trust-api` image runs as a real process (trust_api.py); every other
container is recorded as running without one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path

from flipgitops.sandbox.flip.cli_support import Cli, CliError
from flipgitops.sandbox.flip.daemon import Daemon

_PACKAGE = "flipgitops.sandbox.flip"
# Each docker command is one process start, and a host step runs about twenty of them, so
# a command imports only what it plays: `version` does not load the compose reader, `ps`
# does not load the trust-api poller (command -> module, handler).
_COMMANDS: dict[str, tuple[str, str]] = {
    "version": ("engine_commands", "version"), "info": ("engine_commands", "info"),
    "swarm": ("engine_commands", "swarm"), "network": ("engine_commands", "network"),
    "ps": ("engine_commands", "docker_ps"), "stop": ("engine_commands", "docker_stop"),
    "compose": ("compose_commands", "compose"),
}
# The refusals a command may raise besides CliError, printed like it: (module, class). A
# module the command never imported cannot have raised its error.
_REFUSALS = (("compose_names", "ComposeError"), ("world", "WorldError"))


def _refusal(exc: Exception) -> bool:
    if isinstance(exc, CliError):
        return True
    for module, name in _REFUSALS:
        loaded = sys.modules.get(f"{_PACKAGE}.{module}")
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ if environ is None else environ)
    try:
        cli, rest = _global_options(args)
        return _dispatch(cli, rest, env)
    except BrokenPipeError:  # `… | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if not _refusal(exc):
            raise
        print(str(exc), file=sys.stderr)
        return 1



def _global_options(args: list[str]) -> tuple[Cli, list[str]]:
    daemon_dir: str | None = None
    world: str | None = None
    while args and args[0].startswith("--"):
        flag, eq, value = args[0].partition("=")
        if flag not in ("--daemon-dir", "--world"):
            break
        if not eq:
            if len(args) < 2:
                raise CliError(f"flag needs an argument: {flag}")
            value = args[1]
            args = args[2:]
        else:
            args = args[1:]
        if flag == "--daemon-dir":
            daemon_dir = value
        else:
            world = value
    if not daemon_dir:
        raise CliError(
            "flip-standin-docker needs --daemon-dir DIR (one host's daemon state) before the "
            "docker arguments, e.g. flip-standin-docker --daemon-dir /tmp/x/host1/docker ps"
        )
    world_path = Path(world).expanduser().resolve() if world else None
    return Cli(Daemon(Path(daemon_dir)), world_path), args


def _dispatch(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    entry = _COMMANDS.get(args[0])
    if entry is None:
        raise CliError(
            f"docker: '{args[0]}' is not a docker command the stand-in plays "
            f"(it plays: {', '.join(_COMMANDS)})."
        )
    module, name = entry
    handler: Callable[[Cli, list[str], dict[str, str]], int] = getattr(
        import_module(f"{_PACKAGE}.{module}"), name)
    return handler(cli, args[1:], env)


if __name__ == "__main__":
    sys.exit(main())
