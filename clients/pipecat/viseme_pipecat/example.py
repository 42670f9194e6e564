"""A runnable pipecat bot with visemes: `python -m viseme_pipecat.example`.

It serves pipecat's WebSocket transport (protobuf frames) on ws://127.0.0.1:8765 and
says a sentence to each client that connects, in espeak-ng's voice; the viseme
processor sits between the TTS and the output, as it would after any TTS service
(Cartesia, Deepgram, ElevenLabs, Piper...). The tests run this bot
(tests/test_pipecat.py).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from pipecat.frames.frames import Frame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.workers.runner import WorkerRunner

from viseme_engine.live import shared_engine
from viseme_pipecat import VisemeProcessor

ESPEAK_RATE = 22_050


class EspeakTTS(TTSService):
    """espeak-ng as a pipecat TTS service, streamed in 93 ms pieces; `pace` 1.0 sends
    them as fast as they play (a live TTS), 0 all at once."""

    def __init__(self, pace: float = 0.0, **kwargs: Any) -> None:
        self.pace = pace
        settings = TTSSettings(model=None, voice=None, language=None)
        super().__init__(
            push_start_frame=True, push_stop_frames=True, stop_frame_timeout_s=0.3,
            settings=settings, **kwargs,
        )  # fmt: skip

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        speak = ["espeak-ng", "--stdout", text]
        wav = (
            await asyncio.to_thread(subprocess.run, speak, capture_output=True, check=True)
        ).stdout

        async def pieces() -> AsyncIterator[bytes]:
            for at in range(0, len(wav), 4096):
                yield wav[at : at + 4096]
                await asyncio.sleep(4096 / 2 / ESPEAK_RATE * self.pace)

        async for frame in self._stream_audio_frames_from_iterator(
            pieces(), strip_wav_header=True, context_id=context_id
        ):
            yield frame


def bot(
    host: str = "127.0.0.1",
    port: int = 8765,
    pace: float = 1.0,
    greeting: str = "Bob may pay my mom.",
    **visemes: Any,
) -> PipelineWorker:
    """The pipeline: transport in, TTS, visemes, transport out; it says `greeting` to
    each client. `visemes` are the `VisemeProcessor`'s arguments (model, lipsync,
    gateway_url and api_key)."""
    transport = SingleClientWebsocketServerTransport(
        SingleClientWebsocketServerParams(
            serializer=ProtobufFrameSerializer(), audio_out_enabled=True, allowed_origins=[]
        ),
        host=host,
        port=port,
    )
    tts = EspeakTTS(pace)
    pipeline = Pipeline([transport.input(), tts, VisemeProcessor(**visemes), transport.output()])
    task = PipelineWorker(pipeline, params=PipelineParams(audio_out_sample_rate=16_000))

    @transport.event_handler("on_client_connected")  # type: ignore[untyped-decorator]
    async def greet(_transport: Any, _client: Any) -> None:
        await task.queue_frames([TTSSpeakFrame(greeting)])

    return task


async def run(task: PipelineWorker, handle_sigint: bool = True) -> None:
    """Run the bot until its pipeline ends (or is cancelled)."""
    runner = WorkerRunner(handle_sigint=handle_sigint)
    await runner.add_workers(task)
    await runner.run()


async def serve(task: PipelineWorker, in_process: bool) -> None:
    if in_process:
        await shared_engine()  # the models loaded before the first word
    await run(task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--gateway-url", help="ws[s]://host/v1/visemes/stream (default: in-process)"
    )
    parser.add_argument("--api-key", help="the gateway API key, with --gateway-url")
    args = parser.parse_args()
    task = bot(port=args.port, gateway_url=args.gateway_url, api_key=args.api_key)
    asyncio.run(serve(task, in_process=args.gateway_url is None))


if __name__ == "__main__":
    main()
