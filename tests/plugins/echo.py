"""A fourth provider, for tests only: proof that a provider is one module and one fake.

The "echo" protocol is as small as a voice agent's can be. The gateway connects
to {echo_ws_url}/echo?room=<room> with an `X-Echo-Secret` header; upstream says
{"op": "hello"} (the gate), then {"op": "audio", "rate": 16000, "pcm": <base64
s16le>} messages, {"op": "done"} at the end of a response and {"op": "reset"} on
an interruption. Visemes follow each audio message as {"op": "visemes", ...}.
{"op": "bug"} makes the adapter fail as a buggy one would (tests/test_plugin_provider.py).
Nothing in gateway/ knows of it: VISEME_GATEWAY_PROVIDER_MODULES=tests.plugins.echo.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import aiohttp
from pydantic import Field

from providers import base
from providers.base import Event, Message, Reading
from viseme_engine.audio import AudioFormat


class EchoConfig(base.ProviderConfig):
    room: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9-]+$")]
    secret: base.Secret


class _Audio(Event):
    pcm: str
    rate: int = 16000


class Echo(base.Provider[EchoConfig]):
    name = "echo"
    config_model = EchoConfig
    routes = (base.Route("/v1/echo", "Echo relay (WebSocket)", query=("token",)),)
    urls = (base.UrlSetting("echo_ws_url", "wss://echo.invalid", ("ws", "wss"), "Echo base URL"),)

    def __init__(self, config: EchoConfig, options: Any) -> None:
        super().__init__(config, options)
        self._chunks = 0

    async def target(self, http: aiohttp.ClientSession, client_path: str) -> base.Target:
        query = urlencode({"room": self.config.room})
        url = f"{self.options.urls['echo_ws_url']}/echo?{query}"
        return base.Target(url, {"X-Echo-Secret": self.config.secret})

    def read(self, message: Message) -> Reading:
        op = message.get("op")
        if op == "hello":
            return Reading(opens_gate=True)
        if op == "audio":
            audio = _Audio.model_validate(message)
            self._chunks += 1
            return Reading(
                audio=base.Audio(audio.pcm, AudioFormat("pcm_s16le", audio.rate), self._chunks)
            )
        if op == "done":
            return Reading(completes=True)
        if op == "reset":
            return Reading(resets=True)
        if op == "bug":  # an adapter with a bug of its own: not a malformed event
            raise RuntimeError("adapter bug")
        return base.NOTHING

    def inject(self, message: Message, visemes: Message) -> base.Injection:
        return base.Injection(extra={"op": "visemes", **visemes})


PROVIDERS = (Echo,)
