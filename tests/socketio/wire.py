"""Raw Engine.IO / Socket.IO clients for tests: the frames exactly as they travel.

``RawSocket`` speaks over ``websockets`` and answers pings itself (unless told not to);
``Polling`` over aiohttp. Neither parses more than a test needs to assert on.
"""
import asyncio
import json

import aiohttp
import websockets

from tests.clients import track

SEP = "\x1e"


def parse_event(message: str) -> tuple[str, list]:
    """``42["name",...]`` (an Engine.IO message carrying a Socket.IO EVENT) -> (name, args)."""
    assert message.startswith("42["), message
    name, *args = json.loads(message[2:])
    return name, args


class RawSocket:
    def __init__(self, ws, *, answer_pings: bool = True) -> None:
        self.ws = ws
        self.answer_pings = answer_pings
        self.open_packet: dict | None = None

    @classmethod
    async def open(cls, base_url: str, query: str = "", *, headers=None, answer_pings: bool = True,
                   sid: str | None = None) -> "RawSocket":
        url = f"{base_url}/socket.io/?EIO=4&transport=websocket"
        if sid:
            url += f"&sid={sid}"
        if query:
            url += "&" + query
        ws = track(await websockets.connect(url, additional_headers=headers, ping_interval=None, open_timeout=5))
        sock = cls(ws, answer_pings=answer_pings)
        if sid is None:
            first = await sock.recv()
            assert first.startswith("0"), first
            sock.open_packet = json.loads(first[1:])
        return sock

    async def recv(self, timeout: float = 3.0) -> str | bytes:
        """The next frame that is not a ping (pings are answered)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.recv()
                if frame == "2" and self.answer_pings:
                    await self.ws.send("3")
                    continue
                return frame

    async def send(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def connect(self, auth: dict | None = None, namespace: str = "/") -> str:
        """CONNECT; returns the raw answer (``40{"sid":...}`` or ``44{...}``)."""
        prefix = "" if namespace == "/" else namespace + ","
        await self.send("40" + prefix + (json.dumps(auth) if auth is not None else ""))
        return await self.recv()

    async def event(self, name: str, timeout: float = 3.0) -> list:
        """The args of the next event called ``name`` (other frames are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if isinstance(frame, str) and frame.startswith("42["):
                    got, args = parse_event(frame)
                    if got == name:
                        return args

    async def closed(self, timeout: float = 5.0) -> int:
        """Wait for the server to close; returns the close code (frames before it are dropped)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.recv(timeout)
        except websockets.ConnectionClosed as e:
            return e.rcvd.code if e.rcvd is not None else 1006

    async def close(self) -> None:
        await self.ws.close()


class Polling:
    """HTTP long-polling requests of one Engine.IO session."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, query: str = "", headers=None) -> None:
        self.http = http
        self.base_url = base_url
        self.query = query
        self.headers = headers or {}
        self.sid: str | None = None
        self.open_packet: dict | None = None

    def url(self, sid: str | None = None) -> str:
        url = f"{self.base_url}/socket.io/?EIO=4&transport=polling"
        if sid:
            url += f"&sid={sid}"
        if self.query:
            url += "&" + self.query
        return url

    async def handshake(self) -> dict:
        async with self.http.get(self.url(), headers=self.headers) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.text()
        assert body.startswith("0"), body
        self.open_packet = json.loads(body[1:])
        self.sid = self.open_packet["sid"]
        return self.open_packet

    async def get(self, timeout: float = 5.0) -> tuple[int, str]:
        async with self.http.get(self.url(self.sid), headers=self.headers,
                                 timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return resp.status, await resp.text()

    async def post(self, body: str | bytes) -> tuple[int, str]:
        async with self.http.post(self.url(self.sid), data=body, headers=self.headers) as resp:
            return resp.status, await resp.text()

    async def packets(self, timeout: float = 5.0) -> list[str]:
        """One GET's packets, pings answered with a POST."""
        status, body = await self.get(timeout)
        assert status == 200, body
        packets = body.split(SEP)
        if "2" in packets:
            assert (await self.post("3"))[0] == 200
        return [p for p in packets if p != "2"]

    async def connect(self, auth: dict | None = None) -> list[str]:
        """CONNECT over polling; returns the packets the next GETs bring until the answer."""
        status, body = await self.post("40" + (json.dumps(auth) if auth is not None else ""))
        assert (status, body) == (200, "ok")
        got: list[str] = []
        while not any(p.startswith(("40", "44")) for p in got):
            got += await self.packets()
        return got
