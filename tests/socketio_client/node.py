"""Run Node scripts of this folder from tests: the real socket.io-client from npm (package.json)."""
import asyncio
import json
import os
from pathlib import Path
import shutil

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def node_binary() -> str:
    """Node and the npm packages must be there: fail (never skip) with what to run."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required for the socket.io-client tests (install nodejs and npm)")
    if not (ROOT / "node_modules" / "socket.io-client" / "package.json").exists():
        pytest.fail("socket.io-client is not installed: run `make node` (npm ci) at the repository root")
    return node


class NodeClient:
    """``driver.mjs``: one socket.io-client socket, driven over stdin/stdout JSON lines."""

    def __init__(self, url: str, options: dict | None = None, *, resubscribe: list | None = None,
                 keeper: bool = False) -> None:
        self.url = url
        self.options = options or {}
        self.resubscribe = resubscribe
        self.keeper = keeper
        self.proc: asyncio.subprocess.Process | None = None
        self.seen: list[dict] = []  # every message, in order
        self._taken: set[int] = set()  # indexes of messages already returned by next()
        self._acks = 0

    async def start(self) -> "NodeClient":
        env = {**os.environ, "SIO_URL": self.url, "SIO_OPTIONS": json.dumps(self.options), "SIO_LIFETIME_MS": "60000"}
        if self.resubscribe is not None:
            env["SIO_RESUBSCRIBE"] = json.dumps(self.resubscribe)
        if self.keeper:
            env["SIO_KEEPER"] = "1"
        self.proc = await asyncio.create_subprocess_exec(
            node_binary(), str(HERE / "driver.mjs"), cwd=ROOT, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        return self

    async def _read(self) -> dict:
        line = await self.proc.stdout.readline()
        if not line:
            err = (await self.proc.stderr.read()).decode(errors="replace")
            raise AssertionError(f"the Node client exited ({self.proc.returncode}): {err}\nseen: {self.seen}")
        msg = json.loads(line)
        self.seen.append(msg)
        return msg

    async def next(self, type: str, event: str | None = None, timeout: float = 8.0) -> dict:
        """The first message of ``type`` (and ``event``) not returned yet, waiting for it if need be."""
        async with asyncio.timeout(timeout):
            checked = 0
            while True:
                for index in range(checked, len(self.seen)):
                    msg = self.seen[index]
                    if index not in self._taken and msg["type"] == type and (event is None or msg.get("event") == event):
                        self._taken.add(index)
                        return msg
                checked = len(self.seen)
                await self._read()

    async def send(self, command: dict) -> None:
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def emit(self, event: str, *data, ack: bool = False) -> dict | None:
        """``socket.emit(event, data)``; with ``ack``, wait for the callback's reply."""
        self._acks += 1
        command = {"do": "emit", "event": event, "ack": ack, "id": self._acks}
        if data:
            command["data"] = data[0]
        await self.send(command)
        if ack:
            msg = await self.next_ack(self._acks)
            assert msg["error"] is None, msg
            return msg["reply"]
        return None

    async def next_ack(self, ident: int) -> dict:
        async with asyncio.timeout(8.0):
            while True:
                for msg in self.seen:
                    if msg["type"] == "ack" and msg["id"] == ident:
                        return msg
                await self._read()

    async def close(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await self.send({"do": "close"})
            await asyncio.wait_for(self.proc.wait(), 3)
        except (Exception, asyncio.CancelledError):
            self.proc.kill()
            await self.proc.wait()


async def run_script(script: str, env: dict, timeout: float = 30.0) -> tuple[int, str, str]:
    """Run a Node script of this folder to its end: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        node_binary(), str(HERE / script), cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()
