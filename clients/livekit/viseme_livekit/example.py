"""A LiveKit agent with visemes: `python -m viseme_livekit.example dev`.

It needs a LiveKit server (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, as any
LiveKit agent): in each room it joins, it says a sentence in espeak-ng's voice and
publishes the visemes on the data topic `visemes` as the audio plays. A real agent
has its STT, LLM and any TTS in the `AgentSession`; the one line that matters here
is `attach(session, room)`, after `session.start`. The tests drive `EspeakTTS` and
`attach` through a real `AgentSession` (tests/test_livekit.py); no LiveKit server
runs there.
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

from livekit.agents import Agent, AgentSession, JobContext, WorkerOptions, cli, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from viseme_engine.live import shared_engine
from viseme_livekit import attach

ESPEAK_RATE = 22_050


class EspeakTTS(tts.TTS[Any]):
    """espeak-ng as a LiveKit TTS (non-streaming: one synthesis per text)."""

    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=ESPEAK_RATE,
            num_channels=1,
        )

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _Espeak(tts=self, input_text=text, conn_options=conn_options)


class _Espeak(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        speak = ["espeak-ng", "--stdout", self.input_text]
        done = await asyncio.to_thread(subprocess.run, speak, capture_output=True, check=True)
        output_emitter.initialize(
            request_id="espeak", sample_rate=ESPEAK_RATE, num_channels=1, mime_type="audio/pcm"
        )
        output_emitter.push(done.stdout[44:])  # the PCM after the WAV header
        output_emitter.flush()


async def entrypoint(ctx: JobContext) -> None:
    await shared_engine()  # load the models before the first word
    await ctx.connect()
    session: AgentSession[Any] = AgentSession(tts=EspeakTTS())
    await session.start(agent=Agent(instructions="Greet the user."), room=ctx.room)
    output = attach(session, ctx.room)  # visemes on the topic "visemes", as the audio plays
    ctx.add_shutdown_callback(output.aclose)
    await session.say("Bob may pay my mom.")


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint))
