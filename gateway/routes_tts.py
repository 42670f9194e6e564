"""POST /v1/visemes-audio: text in, synchronized speech and visemes out as Server-Sent Events.

The text is split into sentences; a producer task asks the TTS engine for one
sentence at a time and cuts its PCM into chunks; the handler feeds each chunk
to one viseme engine stream (the same treatment for every TTS engine) and
writes an `audio` event, then a `visemes` event. A bounded queue between the
two lets synthesis of the next sentence overlap inference and the network.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from dataclasses import dataclass

from aiohttp import web

from providers.tts import ENGINES, Speech, TtsEngine, TtsError, split_sentences
from viseme_engine.audio import AudioFormat
from viseme_engine.batcher import EngineOverloaded
from viseme_engine.engine import MODEL_LANGUAGES, EngineStream
from viseme_engine.output import LipsyncOutput
from viseme_engine.text_align import ESPEAK_VOICE

from . import guard, schemas
from .errors import ConcurrencyLimit, EngineUnavailable
from .http import read_json
from .sse import SSE_HEADERS, client_gone, require_api_key, sse
from .state import ENGINE, HTTP, LIMITER, SETTINGS, USAGE

log = logging.getLogger("gateway")
# espeak-ng voice per viseme model: the language its transcripts are phonemized in too
LANGUAGES = {model: ESPEAK_VOICE[lang] for model, lang in MODEL_LANGUAGES.items()}
_QUEUE_CHUNKS = 8  # audio chunks synthesized ahead of the client


@dataclass(frozen=True)
class _Chunk:
    pcm: bytes
    last: bool  # the last chunk of the speech: flush the viseme stream after it


_Item = _Chunk | TtsError | None  # None: the speech ended without a last chunk


async def visemes_audio(request: web.Request) -> web.StreamResponse:
    key = require_api_key(request)
    settings = request.app[SETTINGS]
    limit, meter = key.policy.tts_concurrency, guard.Meter()
    # The slot before the body: a key's slow uploads are bounded too, not only its speech.
    async with request.app[LIMITER].holding("tts_requests", key.key_id, limit, ConcurrencyLimit):
        body = schemas.parse(
            schemas.VisemesAudioRequest,
            await read_json(request, settings.max_body_bytes),
            "Invalid request",
        )
        guard.allow(key, model=body.model)
        await guard.check_quota(request.app, key)
        if request.app[ENGINE].engine is None:
            raise EngineUnavailable("Viseme engine is not ready")
        try:
            return await _speak(request, body, meter)
        finally:
            audio, _ = meter.take()
            usage = request.app[USAGE]
            await usage.record(key.key_id, tts_characters=len(body.text), tts_audio_ms=audio)


async def _speak(
    request: web.Request, body: schemas.VisemesAudioRequest, meter: guard.Meter
) -> web.StreamResponse:
    settings, engine = request.app[SETTINGS], request.app[ENGINE].engine
    assert engine is not None
    tts_class = ENGINES[body.tts_engine]
    tts = tts_class(
        request.app[HTTP], settings.urls_for(tts_class.urls), settings.tts_timeout_seconds
    )
    fmt = AudioFormat("pcm_s16le", tts.sample_rate)
    use_text = settings.text_informed and body.use_text
    lipsync = schemas.lipsync_config(settings, body.lipsync)
    stream = engine.open_stream(body.model, fmt, use_text=use_text, lipsync=lipsync)
    output = LipsyncOutput(lipsync)
    if use_text:  # the speech is exactly this text: it pins the visemes
        await stream.add_text(body.text, final=True)
    speech = Speech(body.voice, body.speed, LANGUAGES[body.model], body.tts_api_key)
    chunk_bytes = settings.sse_chunk_ms * fmt.sample_rate // 1000 * fmt.bytes_per_sample
    queue: asyncio.Queue[_Item] = asyncio.Queue(_QUEUE_CHUNKS)
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    async with asyncio.TaskGroup() as tasks:
        producer = tasks.create_task(
            _produce(tts, split_sentences(body.text), speech, chunk_bytes, queue)
        )
        consumer = tasks.create_task(
            _consume(request, response, (stream, output, meter), queue, fmt)
        )
        watcher = tasks.create_task(_watch(request))
        await asyncio.wait((consumer, watcher), return_when=asyncio.FIRST_COMPLETED)
        # Done, failed or the client left: nothing of this request lives on. No
        # exception leaves these tasks: one would keep the engine stream alive in a
        # traceback cycle (Python 3.11's TaskGroup) until the garbage collector runs.
        for task in (producer, consumer, watcher):
            task.cancel()
    return response


async def _watch(request: web.Request) -> None:
    """Notice a client that leaves while nothing is written (a slow upstream sentence)."""
    # aiohttp offers no disconnect event short of cancelling every handler, so poll.
    while not client_gone(request):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    log.info("client left /v1/visemes-audio mid-stream")


async def _produce(
    tts: TtsEngine,
    sentences: list[str],
    speech: Speech,
    chunk_bytes: int,
    queue: asyncio.Queue[_Item],
) -> None:
    buffer = bytearray()
    for index, sentence in enumerate(sentences):
        context = (
            sentences[index - 1] if index else "",
            sentences[index + 1] if index + 1 < len(sentences) else "",
        )
        try:
            # aclosing: a cancelled request ends the upstream call or espeak-ng at once.
            async with contextlib.aclosing(tts.synthesize(sentence, speech, context)) as audio:
                async for pcm in audio:
                    buffer += pcm
                    # Strictly more than a chunk: the remainder goes at the sentence's
                    # end, so the speech's last chunk is known to be last when queued.
                    while len(buffer) > chunk_bytes:
                        await queue.put(_Chunk(bytes(buffer[:chunk_bytes]), last=False))
                        del buffer[:chunk_bytes]
        except TtsError as exc:
            await queue.put(exc)
            return
        del buffer[len(buffer) & ~1 :]  # an odd trailing byte is half a sample
        if buffer:
            await queue.put(_Chunk(bytes(buffer), last=index == len(sentences) - 1))
            buffer.clear()
    await queue.put(None)


async def _consume(
    request: web.Request,
    response: web.StreamResponse,
    streams: tuple[EngineStream, LipsyncOutput, guard.Meter],
    queue: asyncio.Queue[_Item],
    fmt: AudioFormat,
) -> None:
    try:
        await _write_events(request, response, streams, queue, fmt)
    except ConnectionError:
        log.info("client left /v1/visemes-audio mid-stream")


async def _write_events(
    request: web.Request,
    response: web.StreamResponse,
    streams: tuple[EngineStream, LipsyncOutput, guard.Meter],
    queue: asyncio.Queue[_Item],
    fmt: AudioFormat,
) -> None:
    stream, output, meter = streams
    sequence = 0
    flushed = False
    while (item := await queue.get()) is not None:
        if client_gone(request):
            raise ConnectionResetError("client left")
        if isinstance(item, TtsError):
            log.warning("visemes-audio: %s", item)
            await response.write(sse({"message": str(item), "audio_sequence": sequence}, "error"))
            return
        duration_ms = round(fmt.duration_ms(len(item.pcm)))
        audio = {
            "type": "audio",
            "data": base64.b64encode(item.pcm).decode(),
            "sample_rate": fmt.sample_rate,
            "sequence": sequence,
            "chunk_duration_ms": duration_ms,
        }
        await response.write(sse(audio))
        try:
            events = await stream.feed(item.pcm)
            if item.last:
                events += await stream.flush()
                flushed = True
        except EngineOverloaded as exc:
            await response.write(sse({"message": str(exc), "audio_sequence": sequence}, "error"))
            return
        meter.audio_ms += fmt.duration_ms(len(item.pcm))
        piece = output.push(events, stream.take_probs(), final=flushed)
        await response.write(sse(_visemes(piece, duration_ms, sequence)))
        sequence += 1
        if item.last:
            break
    if not flushed and sequence:  # the last sentence gave no audio: flush after all
        piece = output.push(await stream.flush(), stream.take_probs(), final=True)
        await response.write(sse(_visemes(piece, 0, sequence - 1)))
    # The end of the stream is written once the handler returns: after its usage is.


def _visemes(piece: dict[str, object], duration_ms: int, sequence: int) -> dict[str, object]:
    """The piece (visemes or blendshapes, offsets from the start of the speech)."""
    return {
        "type": "visemes",
        **piece,
        "chunk_duration_ms": duration_ms,
        "audio_sequence": sequence,
        # A chunk's visemes could be split over several events; today there is one.
        "viseme_sequence": "1/1",
    }


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/visemes-audio", visemes_audio)
