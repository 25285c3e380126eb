"""An ssh key given as key material lives in RAM (a memfd), reached by ssh through /proc."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from flipgitops.adapters.hosts import _KeyFiles


def test_a_key_is_readable_by_a_child_at_0600_and_gone_after_the_run() -> None:
    keys = _KeyFiles()
    material = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nabc\n-----END OPENSSH " + \
        "PRIVATE KEY-----"
    path = keys.add("Trust_1", material)
    assert path.startswith(f"/proc/{os.getpid()}/fd/")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # what ssh insists on
    assert os.readlink(path).startswith("/memfd:")  # not a file on any disk
    read = subprocess.run(["cat", path], capture_output=True, text=True, check=True)
    assert read.stdout == material + "\n"
    keys.close()
    assert not Path(path).exists()
