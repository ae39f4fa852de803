"""Helpers of the operations tests: a TCP forwarder standing in for a balancer, server logs as JSON."""
import asyncio
import contextlib
import json


class Forwarder:
    """A TCP forwarder on a free port to ``target`` (a port), which the test may change: the
    balancer that stops sending new connections to a process once its readiness fails."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stale: list = []  # upstream writers kept open by cut(keep_upstream=True)
        self._keep_upstream = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "Forwarder":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        pumps = [asyncio.ensure_future(self._pump(reader, up_writer)), asyncio.ensure_future(self._pump(up_reader, writer))]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
            self._tasks.discard(task)
        writer.close()
        if self._keep_upstream:
            self._stale.append(up_writer)  # the server still sees an open, silent connection
        else:
            up_writer.close()

    @staticmethod
    async def _pump(reader, writer) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    def cut(self, *, keep_upstream: bool = False) -> None:
        """Drop every connection through the forwarder at once (the client sees its TCP connection
        end, with no close frame or Socket.IO DISCONNECT), and keep listening. ``keep_upstream``:
        the server side stays open and silent (a stale connection, until its ping times out)."""
        self._keep_upstream = keep_upstream
        for task in list(self._tasks):
            task.cancel()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for w in self._stale:
            w.close()
        if self.server is not None:
            self.server.close()


def json_lines(output: str) -> list[dict]:
    """Every line of a server's output as JSON (AssertionError names the first that is not)."""
    records = []
    for number, line in enumerate(output.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
    return records


def records(output: str) -> list[dict]:
    """The JSON lines of a server's output (others skipped)."""
    out = []
    for line in output.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
