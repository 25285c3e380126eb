"""The tests' secret search (tests/leaksearch.py) finds what it must, even when limited to
the files changed since a value was minted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.leaksearch import grep_tree

NEEDLE = "s3cr3t-minted-value-0123456789"


def test_finds_the_value_in_nested_files_and_skips_what_it_is_told(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    hit = tmp_path / "a" / "b" / "leak.txt"
    hit.write_text(f"x={NEEDLE}\n")
    allowed = tmp_path / "kit"
    allowed.write_text(NEEDLE)
    (tmp_path / "clean").write_text("nothing here")
    os.mkfifo(tmp_path / "fifo")  # never read: it would block
    (tmp_path / "link").symlink_to(hit)  # searched where it lives, not twice
    assert grep_tree(tmp_path, [NEEDLE], skip={allowed}) == [str(hit)]


def test_changed_since_reads_new_files_only_and_an_old_mtime_does_not_hide_one(
        tmp_path: Path) -> None:
    old = tmp_path / "old.txt"
    old.write_text(NEEDLE)  # stands for a file from before the value existed
    cutoff = time.time() + 5  # as if the value had been minted after `old` was written
    assert grep_tree(tmp_path, [NEEDLE], changed_since=cutoff) == []
    assert grep_tree(tmp_path, [NEEDLE], changed_since=time.time() - 60) == [str(old)]

    minted = time.time()
    new = tmp_path / "new.txt"
    new.write_text(NEEDLE)
    os.utime(new, (0, 0))  # mtime set back to 1970: ctime still says now
    assert str(new) in grep_tree(tmp_path, [NEEDLE], changed_since=minted)
