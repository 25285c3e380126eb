"""adapters/hosts_channel: values served from memory over a private UNIX socket."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from flipgitops.adapters import hosts_channel as ch


def _short_dir(tmp_path: Path) -> Path:
    d = Path("/tmp") / f"fgch-{os.getpid()}-{tmp_path.name[-8:]}"
    d.mkdir(mode=0o700)
    return d


def test_get_and_put_through_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _short_dir(tmp_path)
    try:
        with ch.ChannelServer(d, {"Trust_1": {"facts": {"entry": "m", "args": {"x": 1}}}}) as srv:
            assert stat.S_IMODE(os.stat(srv.path).st_mode) & 0o077 == 0
            for key, value in srv.env.items():
                monkeypatch.setenv(key, value)
            assert ch.fetch("Trust_1", "facts") == {"entry": "m", "args": {"x": 1}}
            ch.put("Trust_1", "facts", {"changed": True})
            assert srv.received == {"Trust_1": {"facts": {"changed": True}}}
            with pytest.raises(ch.ChannelError, match="nothing for Trust_2/facts"):
                ch.fetch("Trust_2", "facts")
            monkeypatch.setenv(ch.ENV_TOKEN, "wrong")
            with pytest.raises(ch.ChannelError, match="wrong channel token"):
                ch.fetch("Trust_1", "facts")
            assert "args" not in repr(srv)
        assert not srv.path.exists()
        monkeypatch.setenv(ch.ENV_TOKEN, srv.token)
        with pytest.raises(ch.ChannelError, match="gone"):
            ch.fetch("Trust_1", "facts")
    finally:
        d.rmdir()


def test_outside_flipgitops_the_plugins_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ch.ENV_SOCKET, raising=False)
    with pytest.raises(ch.ChannelError, match="only run through flipgitops"):
        ch.fetch("Trust_1", "facts")


def test_a_malformed_request_is_answered_not_crashed(tmp_path: Path) -> None:
    d = _short_dir(tmp_path)
    try:
        with ch.ChannelServer(d, {}) as srv:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(srv.path))
                sock.sendall(b"not json\n")
                reply = json.loads(sock.makefile("rb").readline())
            assert reply == {"ok": False, "error": "malformed request"}
    finally:
        d.rmdir()
