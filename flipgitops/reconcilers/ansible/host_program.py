"""The program a flipgitops host step runs on a trust host, and how its answer is read.

Why not an Ansible module: a new-style module is shipped as an AnsiballZ payload whose
loader imports `ansible.module_utils.basic` (and ~60 more files, compiled from a zip with no
bytecode cache) before the module's first line. That cost ~0.4 CPU-s per invocation on
this machine, more than a host's own work, and the host modules used nothing of it but
argument passing and ``no_log`` masking, which `flipgitops_host/runner.py` does itself.
Ansible stays what it is good at: inventory, connection (local, ssh with its control
master), become, forks, unreachable hosts, events.

The program: `BOOT` below, preceded by three literals: the collector's thresholds
(`flipgitops/gc_thresholds.py`), then the `flipgitops_host` sources and the request
``{"entry", "args"}``, each JSON, zlib-compressed and base64-encoded. The action
plugin pipes it to ``<python> -I -S -`` on the host (`COMMAND_FLAGS`): stdin only, so the
secrets a request may carry (kit files, FL kit keys) are never in a file on the host or the
controller, nor in an argument list. The bootstrap imports the package from memory (no
file, no bytecode written), runs `runner.run`, and writes one JSON document to the stdout
it was given; while the step runs, fd 1 points at stderr, so nothing a child process prints
can corrupt the answer. The host needs Python 3.7+ and its standard library only.
"""

from __future__ import annotations

import base64
import functools
import json
import zlib
from importlib.resources import files
from typing import Any

from flipgitops.gc_thresholds import GC_THRESHOLDS

PACKAGE = "flipgitops_host"  # the package's name on the host
SOURCE_PACKAGE = "flipgitops.reconcilers.ansible.flipgitops_host"
COMMAND_FLAGS = ("-I", "-S", "-")  # isolated, no site-packages, program on stdin
STDERR_TAIL = 400

BOOT = r'''
def _flipgitops_main():
    import gc
    gc.set_threshold(*_GC_THRESHOLDS)  # a short run: few cycles (gc_thresholds.py)
    import base64, json, os, sys, zlib
    from importlib.machinery import ModuleSpec

    def unpack(blob):
        return json.loads(zlib.decompress(base64.b64decode(blob)).decode("utf-8"))

    sources = unpack(_SOURCES)
    request = unpack(_REQUEST)

    class Loader:
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            name = module.__spec__.name
            code = compile(sources[name], "<host>/" + name.replace(".", "/") + ".py", "exec",
                           dont_inherit=True)
            exec(code, module.__dict__)

    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name not in sources:
                return None
            return ModuleSpec(name, Loader(), is_package="." not in name)

    sys.meta_path.insert(0, Finder())
    answer = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    runner = None
    try:
        from flipgitops_host import runner
        result = runner.run(request)
    except BaseException as exc:
        import traceback
        frame = traceback.extract_tb(exc.__traceback__)[-1:]
        where = " at %s:%s" % (frame[0].filename, frame[0].lineno) if frame else ""
        msg = "the host program crashed: %s: %s%s" % (type(exc).__name__, exc, where)
        if runner is not None:
            msg = runner.mask(msg, runner.secret_values(request.get("args", {}).get("secret")))
        result = {"failed": True, "changed": False, "msg": msg}
    data = json.dumps(result).encode("ascii")
    while data:
        data = data[os.write(answer, data):]


_flipgitops_main()
'''


@functools.cache
def sources() -> str:
    """The `flipgitops_host` package, ready for the program (read once per process)."""
    root = files(SOURCE_PACKAGE)
    found = {PACKAGE: root.joinpath("__init__.py").read_text(encoding="utf-8")}
    for entry in root.iterdir():
        if entry.name.endswith(".py") and entry.name != "__init__.py":
            found[f"{PACKAGE}.{entry.name[:-3]}"] = entry.read_text(encoding="utf-8")
    return _pack(found)


def program(entry: str, args: dict[str, Any]) -> bytes:
    """The whole program for one host run of ``entry`` (a step, `facts`, `steps`, …)."""
    return assemble(sources(), {"entry": entry, "args": args})


def assemble(packed_sources: str, request: dict[str, Any]) -> bytes:
    """The program text around already packed sources (`sources`, or a test's own)."""
    text = (f"_GC_THRESHOLDS = {GC_THRESHOLDS!r}\n_SOURCES = {packed_sources!r}\n"
            f"_REQUEST = {_pack(request)!r}\n{BOOT}")
    return text.encode("ascii")


def answer(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The program's result, or a failure that says why there is none (no interpreter, a
    Python too old, a crash before the bootstrap ran: the last line of stderr)."""
    text = stdout.strip()
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and rc == 0:
        return doc
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    why = lines[-1][-STDERR_TAIL:] if lines else "no output"
    return {"failed": True, "changed": False,
            "msg": f"the flipgitops host program did not report (exit {rc}): {why}"}


def _pack(value: Any) -> str:
    return base64.b64encode(zlib.compress(json.dumps(value).encode("utf-8"), 6)).decode()
