"""A real `python -m flipgitops` process an end-to-end test can watch and signal.

`Sandbox.cli` runs a command to its end; the signal and SIGKILL tests need the process
while it works: `Live` starts it with the sandbox's environment, collects what it writes
(byte by byte, so a prompt without a newline is seen), waits for a line to appear and sends
a signal. Also the sandbox's flipgitops state in S3 (lock, journals, ledger), read with a
plain boto3 client on the moto server.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import boto3

from flipgitops.sandbox.environment import REGION, Sandbox


class Live:
    """One CLI process; ``tty=True`` gives it a terminal as stdin (the confirmation prompt)."""

    def __init__(self, box: Sandbox, *args: str, tty: bool = False,
                 extra_env: dict[str, str] | None = None) -> None:
        self.args = args
        self._out: list[str] = []
        self._err: list[str] = []
        self._lock = threading.Lock()
        stdin: Any = subprocess.DEVNULL
        self._pty: int | None = None
        if tty:
            self._pty, slave = pty.openpty()
            stdin = slave
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flipgitops", *args], cwd=box.repo,
            env=box.environ(extra_env), stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        if tty:
            os.close(stdin)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [threading.Thread(target=self._pump, args=(s, sink), daemon=True)
                         for s, sink in ((self.proc.stdout, self._out),
                                         (self.proc.stderr, self._err))]
        for t in self._threads:
            t.start()

    def _pump(self, stream: IO[bytes], sink: list[str]) -> None:
        fd = stream.fileno()
        while chunk := os.read(fd, 4096):
            with self._lock:
                sink.append(chunk.decode("utf-8", "replace"))

    @property
    def out(self) -> str:
        with self._lock:
            return "".join(self._out)

    @property
    def err(self) -> str:
        with self._lock:
            return "".join(self._err)

    @property
    def text(self) -> str:
        return self.out + self.err

    def wait_for(self, pattern: str, timeout: float = 180) -> None:
        """Until ``pattern`` (a regex) shows on stdout or stderr; fails if the process
        ends first or the time runs out."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            if regex.search(self.text):
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)  # what it wrote last
                if regex.search(self.text):
                    return
                raise AssertionError(f"{self.args} ended ({self.proc.returncode}) before "
                                     f"{pattern!r}:\n{self.text}")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.text}")

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 300) -> int:
        code = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=10)
        if self._pty is not None:
            os.close(self._pty)
            self._pty = None
        return code


@dataclass
class StateBucket:
    """The sandbox's flipgitops state (s3://<state.bucket>/<prefix>/...)."""

    box: Sandbox

    @property
    def s3(self) -> Any:
        return boto3.client("s3", region_name=REGION, endpoint_url=self.box.moto.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    @property
    def bucket(self) -> str:
        return f"flip-gitops-state-{self.box.env_name}"

    def key(self, *parts: str) -> str:
        return "/".join(("flipgitops", *parts))

    def lock(self) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket,
                                      Key=self.key("locks", f"{self.box.env_name}.json"))
        except self.s3.exceptions.NoSuchKey:
            return None
        data: dict[str, Any] = json.loads(body["Body"].read())
        return data

    def runs(self) -> list[str]:
        """Run ids with a journal, oldest first (run ids start with their UTC time)."""
        got = self.s3.list_objects_v2(Bucket=self.bucket,
                                      Prefix=self.key("runs", self.box.env_name) + "/")
        return sorted(o["Key"].rsplit("/", 1)[-1].removesuffix(".jsonl")
                      for o in got.get("Contents", []))

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=self.bucket,
                                  Key=self.key("runs", self.box.env_name, f"{run_id}.jsonl"))
        return [json.loads(line) for line in body["Body"].read().decode().splitlines() if line]

    def objects(self) -> dict[str, bytes]:
        got = self.s3.list_objects_v2(Bucket=self.bucket)
        return {o["Key"]: self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
                for o in got.get("Contents", [])}

    def delete(self) -> None:
        """The whole bucket, as an operator's cleanup script (or an attacker) would."""
        s3 = self.s3
        for _ in range(20):  # the apply may write between the listing and the delete
            for key in [o["Key"] for o in s3.list_objects_v2(Bucket=self.bucket)
                        .get("Contents", [])]:
                s3.delete_object(Bucket=self.bucket, Key=key)
            try:
                s3.delete_bucket(Bucket=self.bucket)
                return
            except s3.exceptions.ClientError:
                time.sleep(0.05)
        raise AssertionError(f"could not delete s3://{self.bucket}")

    def restore(self, objects: dict[str, bytes], *, skip: Sequence[str] = ()) -> None:
        s3 = self.s3
        s3.create_bucket(Bucket=self.bucket,
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        for key, body in objects.items():
            if not any(part in key for part in skip):
                s3.put_object(Bucket=self.bucket, Key=key, Body=body)


def events(journal: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in journal if line["event"] == name]
