"""pocketsphinx's forced alignment (forced_align.py) in a child process.

pocketsphinx keeps the GIL while it decodes: in a thread of the gateway's own
process, aligning a 5 s clip stalled the event loop, and every relayed
conversation on it, by about 150 ms. So each engine has one child, started on
first use as `python -m viseme_engine.align_process` rather than by
multiprocessing, whose `spawn` re-imports the parent's main module: for the
gateway's console script that is the whole gateway (176 MB a child instead of
about 80), and a script without an `if __name__ == "__main__":` guard would
start itself again. Recordings queue for the child; it keeps its decoder
between them. docs/architecture.md ("A second path") says why it exists.

Protocol over the child's stdin and stdout: each message a 4-byte big-endian
length and a pickle. A request is (audio bytes, AudioFormat, transcript); an
answer a ForcedPath, None (no path), or a str (the repr of what went wrong).
Both ends are this module, over a pipe no one else holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
from typing import IO, Any

from viseme_engine.audio import AudioFormat, Resampler, decode
from viseme_engine.forced_align import AlignerPool, ForcedPath

_LENGTH = struct.Struct(">I")


class AlignerDied(ConnectionError):
    """The child exited or its pipe broke mid-request (the next call starts another)."""


class AlignerProcess:
    """The parent's side: `path` sends one recording at a time to the child."""

    def __init__(self) -> None:
        self._child: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def path(self, data: bytes, audio_format: AudioFormat, text: str) -> ForcedPath | None:
        """`AlignerPool.path` of raw audio in `audio_format` (decoded and resampled in
        the child too). Raises AlignerDied, or ValueError for what the child reported."""
        async with self._lock:
            child = await self._started()
            assert child.stdin is not None  # both piped
            assert child.stdout is not None
            try:
                payload = pickle.dumps((data, audio_format, text))
                child.stdin.write(_LENGTH.pack(len(payload)) + payload)
                await child.stdin.drain()
                size = _LENGTH.unpack(await child.stdout.readexactly(_LENGTH.size))[0]
                answer = pickle.loads(await child.stdout.readexactly(size))  # noqa: S301
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.close()
                raise AlignerDied(f"forced aligner exited: {exc!r}") from exc
            except BaseException:  # cancelled mid-request: its answer would be the next one's
                self.close()
                raise
        if isinstance(answer, str):
            raise ValueError(answer)
        return answer if isinstance(answer, ForcedPath) else None

    async def _started(self) -> asyncio.subprocess.Process:
        if self._child is None or self._child.returncode is not None:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            self._child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "viseme_engine.align_process",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            )  # fmt: skip
        return self._child

    @property
    def pid(self) -> int | None:
        """The child's process id, once started."""
        return None if self._child is None else self._child.pid

    def close(self) -> None:
        """Stop the child (it holds no state worth waiting for)."""
        child, self._child = self._child, None
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()

    async def aclose(self) -> None:
        """`close`, and wait until the child is gone (before the event loop closes)."""
        child = self._child
        self.close()
        if child is not None:
            await child.wait()


def _read(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None  # the parent closed the pipe: exit
    return pickle.loads(stream.read(_LENGTH.unpack(head)[0]))  # noqa: S301


def _align(pool: AlignerPool, data: bytes, audio_format: AudioFormat, text: str) -> object:
    whole = len(data) - len(data) % audio_format.bytes_per_sample  # as the model's stream
    audio = Resampler(audio_format.sample_rate)(decode(data[:whole], audio_format.encoding), True)
    return pool.path(audio, text)


def main() -> None:
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the answers' pipe
    pool = AlignerPool(1)
    while (request := _read(requests)) is not None:
        try:
            answer = _align(pool, *request)
        except Exception as exc:
            answer = repr(exc)
        payload = pickle.dumps(answer)
        answers.write(_LENGTH.pack(len(payload)) + payload)
        answers.flush()


if __name__ == "__main__":
    main()
