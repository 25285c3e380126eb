"""`flip-standin-docker`: the container CLI a sandbox trust host runs instead of `docker`.

    flip-standin-docker [--server SOCK] --daemon-dir DIR [--world FILE] <docker args…>

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

`--server SOCK` hands the command to the fork server listening there (cli_server.py), which
runs exactly this code in a fork with this process's cwd, environment and stdio, instead of
this process importing it; with no server there that takes it (another user's, another
namespace's), the command runs here.
"""

from __future__ import annotations

import os
import sys

# Not `from typing import TYPE_CHECKING`: importing typing is a third of what a forwarded
# command costs, and a forwarded command is all this process does.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from flipgitops.sandbox.flip.cli_support import Cli

_PACKAGE = "flipgitops.sandbox.flip"
# Each docker command is one process start, and a host step runs about twenty of them, so
# a command imports only what it plays: `version` does not load the compose reader, `ps`
# does not load the trust-api poller (command -> module, handler). With `--server` the
# command runs in cli_server's fork, which has all of them loaded already; the sandbox's
# hosts reach it through docker_client.py, which imports nothing of ours.
_COMMANDS: dict[str, tuple[str, str]] = {
    "version": ("engine_commands", "version"), "info": ("engine_commands", "info"),
    "swarm": ("engine_commands", "swarm"), "network": ("engine_commands", "network"),
    "ps": ("engine_commands", "docker_ps"), "stop": ("engine_commands", "docker_stop"),
    "compose": ("compose_commands", "compose"),
}
# The refusals a command may raise, printed on stderr: (module, class). A module the
# command never imported cannot have raised its error.
_REFUSALS = (("cli_support", "CliError"), ("compose_names", "ComposeError"),
             ("world", "WorldError"))


def _refusal(exc: Exception) -> bool:
    for module, name in _REFUSALS:
        loaded = sys.modules.get(f"{_PACKAGE}.{module}")
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None,
         forward: bool = True) -> int:
    """Run one docker command; through the fork server when `--server SOCK` names a live
    one (and ``forward``: the server's fork runs this with forward=False)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        flags, rest = _global_options(args)
        if forward and flags.get("--server") and environ is None:
            from flipgitops.sandbox.flip import docker_client

            forwarded = docker_client.forward(flags["--server"], args)
            if forwarded is not None:
                return forwarded
        env = dict(os.environ if environ is None else environ)
        return _dispatch(_cli(flags), rest, env)
    except BrokenPipeError:  # `… | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if not _refusal(exc):
            raise
        print(str(exc), file=sys.stderr)
        return 1


def _global_options(args: list[str]) -> tuple[dict[str, str], list[str]]:
    from flipgitops.sandbox.flip.docker_client import global_flags

    parsed = global_flags(args)
    if parsed is None:
        from flipgitops.sandbox.flip.cli_support import CliError

        raise CliError(f"flag needs an argument: {args[-1].partition('=')[0]}")
    return parsed


def _cli(flags: Mapping[str, str]) -> Cli:
    from pathlib import Path

    from flipgitops.sandbox.flip.cli_support import Cli, CliError
    from flipgitops.sandbox.flip.daemon import Daemon

    if not flags.get("--daemon-dir"):
        raise CliError(
            "flip-standin-docker needs --daemon-dir DIR (one host's daemon state) before the "
            "docker arguments, e.g. flip-standin-docker --daemon-dir /tmp/x/host1/docker ps"
        )
    world = flags.get("--world")
    world_path = Path(world).expanduser().resolve() if world else None
    return Cli(Daemon(Path(flags["--daemon-dir"])), world_path)


def _dispatch(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    entry = _COMMANDS.get(args[0])
    if entry is None:
        from flipgitops.sandbox.flip.cli_support import CliError

        raise CliError(
            f"docker: '{args[0]}' is not a docker command the stand-in plays "
            f"(it plays: {', '.join(_COMMANDS)})."
        )
    from importlib import import_module

    module, name = entry
    handler: Callable[[Cli, list[str], dict[str, str]], int] = getattr(
        import_module(f"{_PACKAGE}.{module}"), name)
    return handler(cli, args[1:], env)


if __name__ == "__main__":
    sys.exit(main())
