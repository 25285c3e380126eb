"""setup_logging's SDK cap holds even when a library lowers its own logger afterwards."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from flipgitops.cli import SDK_LOGGERS, setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in (*SDK_LOGGERS, "botocore.endpoint")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)


@pytest.mark.usefixtures("restore_logging")
def test_levels_by_verbosity(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(0)
    logging.getLogger("botocore.credentials").info("Found credentials")
    logging.getLogger("flipgitops.x").info("ours at info")
    logging.getLogger("flipgitops.x").warning("ours at warning")
    assert capsys.readouterr().err == "WARNING flipgitops.x: ours at warning\n"

    setup_logging(2)
    logging.getLogger("botocore.credentials").info("Found credentials")
    logging.getLogger("botocore.parsers").debug("Response body: secret")
    logging.getLogger("flipgitops.x").debug("ours at debug")
    err = capsys.readouterr().err
    assert err == ("INFO botocore.credentials: Found credentials\n"
                   "DEBUG flipgitops.x: ours at debug\n"), err
    assert len([h for h in logging.getLogger().handlers
                if h.get_name() == "flipgitops-cli"]) == 1, "one handler however often set up"


@pytest.mark.usefixtures("restore_logging")
def test_sdk_cap_holds_when_a_library_lowers_its_logger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging(3)
    logging.getLogger("botocore.endpoint").setLevel(logging.DEBUG)
    logging.getLogger("botocore.endpoint").debug("Response body: b'{\"aes_key\": \"x\"}'")
    assert "aes_key" not in capsys.readouterr().err
