"""A TCP proxy the test controls, to cut or pause the link between a server and its database."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from typing import Any

from tests.server import free_port


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` on an event loop in a thread of its own.

    ``cut()`` resets every connection and refuses new ones (the database host is gone);
    ``pause()`` keeps connections open but forwards nothing (the database is frozen, e.g.
    SIGSTOPped or behind a black-holing network); ``restore()`` undoes either.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self.connections = 0

    def _run(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(10)

    def start(self) -> None:
        self._thread.start()
        self._run(self._listen())

    def close(self) -> None:
        self._run(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def cut(self) -> None:
        self._run(self._cut())

    def pause(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def restore(self) -> None:
        self._run(self._restore())

    async def _listen(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()  # RST, like a host that went away
        self._writers.clear()

    async def _restore(self) -> None:
        self._flowing.set()
        if self._server is None:
            await self._listen()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()  # paused: hold the bytes, answer nothing
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()
