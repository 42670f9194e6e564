"""The embedded default: the espeak-ng CLI, one asyncio subprocess per sentence, offline."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
from collections.abc import AsyncGenerator

from .base import Speech, TtsEngine, TtsError

# espeak-ng's voice variants (espeak-ng --voices=variant): the same set in every language.
ESPEAK_VOICES = (*(f"m{i}" for i in range(1, 8)), *(f"f{i}" for i in range(1, 6)))
_WAV_HEADER = 44  # espeak-ng --stdout writes a plain 44-byte RIFF header, sizes unknown
_WPM = 175  # espeak-ng's default rate, words per minute, for speed 1.0


class EspeakTts(TtsEngine):
    key = "espeak"
    name = "espeak"
    sample_rate = 22_050
    voices = ESPEAK_VOICES

    async def synthesize(
        self, sentence: str, speech: Speech, context: tuple[str, str]
    ) -> AsyncGenerator[bytes, None]:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise TtsError("espeak TTS failed: espeak-ng is not installed on the gateway")
        voice = speech.language + (f"+{speech.voice}" if speech.voice else "")
        rate = str(min(450, max(80, round(_WPM * speech.speed))))
        # The text goes in on stdin, never argv: it may start with "-".
        try:
            proc = await asyncio.create_subprocess_exec(
                binary, "-v", voice, "-s", rate, "--stdout",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            raise TtsError(f"espeak TTS failed: {exc.strerror}") from None
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(sentence.encode())
            proc.stdin.close()
            header = await self._read(proc.stdout, _WAV_HEADER, exact=True)
            rate_in_header = struct.unpack_from("<I", header, 24)[0]
            if header[:4] != b"RIFF" or rate_in_header != self.sample_rate:
                raise TtsError("espeak TTS failed: unexpected output from espeak-ng")
            while chunk := await self._read(proc.stdout, 8192):
                yield chunk
            if await proc.wait() != 0:
                raise TtsError(f"espeak TTS failed: espeak-ng exited with {proc.returncode}")
        finally:
            if proc.returncode is None:  # cancelled, timed out or failed: leave no process
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            # Drain the pipe and reap the child, also when it had exited with output
            # unread, and through a second cancel (shutdown cancels handlers): an open
            # pipe or unreaped child is collected after the loop closes, printing a
            # traceback at exit.
            reap = asyncio.ensure_future(proc.communicate())
            try:
                await asyncio.shield(reap)
            except asyncio.CancelledError:
                await reap  # quick: the child is dead or done
                raise

    async def _read(self, stdout: asyncio.StreamReader, size: int, exact: bool = False) -> bytes:
        seconds = self._timeout_seconds
        try:
            if exact:
                return await asyncio.wait_for(stdout.readexactly(size), seconds)
            return await asyncio.wait_for(stdout.read(size), seconds)
        except TimeoutError:
            raise TtsError(f"espeak TTS failed: no audio within {seconds:g} s") from None
        except asyncio.IncompleteReadError:
            raise TtsError("espeak TTS failed: espeak-ng wrote no audio") from None
