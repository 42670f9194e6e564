"""Fake ElevenLabs and OpenAI text-to-speech servers for 127.0.0.1.

They speak the real request and response shapes (checked against the official
SDKs: elevenlabs text_to_speech `stream`, openai `audio.speech.create`), refuse
a wrong key like the real APIs do, and answer with real speech (espeak-ng,
resampled to the format asked for) streamed in small pieces.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from aiohttp import web

from tests.speech import espeak_pcm

ELEVENLABS_KEY = "sk_fake_elevenlabs_key"
OPENAI_KEY = "sk-fake-openai-key"


@dataclass
class FakeTts:
    """Both upstreams in one app; the knobs change how the next requests are answered."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_status: int | None = None  # answer every request with this status
    hang: bool = False  # accept the request, never answer
    hold_text: str | None = None  # a sentence containing this waits for `release`
    release: asyncio.Event = field(default_factory=asyncio.Event)
    upstream_closed: bool = False  # the gateway hung up on a held request

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self.elevenlabs)
        app.router.add_post("/v1/text-to-speech/{voice_id}", self.elevenlabs)
        app.router.add_post("/v1/audio/speech", self.openai)
        return app

    async def elevenlabs(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            {"engine": "elevenlabs", "voice": request.match_info["voice_id"], **body}
        )
        if request.headers.get("xi-api-key") != ELEVENLABS_KEY:
            detail = {"status": "invalid_api_key", "message": "Invalid API key"}
            return web.json_response({"detail": detail}, status=401)
        if request.query.get("output_format") != "pcm_16000":
            return web.json_response({"detail": {"message": "bad output_format"}}, status=422)
        speed = body.get("voice_settings", {}).get("speed", 1.0)
        if not isinstance(body.get("text"), str) or not body.get("model_id"):
            return web.json_response({"detail": {"message": "text and model_id"}}, status=422)
        if not 0.7 <= speed <= 1.2:  # the real API's documented range
            return web.json_response({"detail": {"message": "speed out of range"}}, status=400)
        return await self._speak(request, body["text"], 16_000)

    async def openai(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"engine": "openai", **body})
        if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            error = {"message": "Incorrect API key provided", "code": "invalid_api_key"}
            return web.json_response({"error": error}, status=401)
        wanted = {"model", "input", "voice", "response_format", "speed"}
        if set(body) != wanted or body["response_format"] != "pcm":
            return web.json_response({"error": {"message": f"body {sorted(body)}"}}, status=400)
        return await self._speak(request, body["input"], 24_000)

    async def _speak(self, request: web.Request, text: str, rate: int) -> web.StreamResponse:
        if self.fail_status is not None:
            error = {"message": "upstream broke"}
            return web.json_response({"error": error}, status=self.fail_status)
        if self.hang:
            await asyncio.Event().wait()
        if self.hold_text is not None and self.hold_text in text:
            try:
                await self.release.wait()
            except asyncio.CancelledError:  # aiohttp cancels a handler whose client left
                self.upstream_closed = True
                raise
        pcm, espeak_rate = espeak_pcm(text)
        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
        out = (soxr.resample(samples, espeak_rate, rate) * 32767).astype("<i2").tobytes()
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for start in range(0, len(out), 3001):  # odd sizes: samples split across pieces
            await response.write(out[start : start + 3001])
        await response.write_eof()
        return response
