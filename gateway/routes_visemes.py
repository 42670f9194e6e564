"""POST /v1/visemes: base64 audio in, Server-Sent Events of visemes out."""

from __future__ import annotations

import base64
import binascii
import logging

from aiohttp import web

from viseme_engine.audio import AudioError, AudioFormat, parse_wav
from viseme_engine.batcher import EngineOverloaded
from viseme_engine.engine import EngineStream
from viseme_engine.output import LipsyncOutput

from . import guard, schemas
from .errors import BadRequest, ConcurrencyLimit, EngineUnavailable, Saturated
from .http import read_json
from .sse import SSE_HEADERS, client_gone, require_api_key, sse
from .state import ENGINE, LIMITER, SETTINGS, USAGE

log = logging.getLogger("gateway")


def _audio(body: schemas.VisemesRequest) -> tuple[AudioFormat, bytes]:
    try:
        blob = base64.b64decode(body.audio, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Invalid audio data: audio is not valid base64") from None
    try:
        if blob[:4] == b"RIFF":
            wav = parse_wav(blob)
            fmt, data = wav.format, wav.data
        else:
            fmt, data = AudioFormat("pcm_s16le", body.sample_rate), blob
        if len(data) < fmt.bytes_per_sample:
            raise AudioError("audio is empty (0 samples)")
    except AudioError as exc:
        raise BadRequest(f"Invalid audio data: {exc}") from None
    return fmt, data


async def visemes(request: web.Request) -> web.StreamResponse:
    key = require_api_key(request)
    settings = request.app[SETTINGS]
    limit = key.policy.visemes_concurrency
    # The slot before the body: a key's slow uploads are bounded too, not only its analyses.
    async with request.app[LIMITER].holding(
        "visemes_requests", key.key_id, limit, ConcurrencyLimit
    ):
        body = schemas.parse(
            schemas.VisemesRequest,
            await read_json(request, settings.max_body_bytes),
            "Invalid audio data",
        )
        fmt, data = _audio(body)
        seconds = fmt.duration_ms(len(data)) / 1000
        if seconds > settings.max_audio_seconds:
            raise BadRequest(
                f"Invalid audio data: {seconds:.0f} s is longer than the "
                f"{settings.max_audio_seconds:.0f} s limit"
            )
        guard.allow(key, model=body.model)
        if request.app[ENGINE].engine is None:
            raise EngineUnavailable("Viseme engine is not ready")
        meter = guard.Meter()
        async with guard.quota_reserved(request.app, key, seconds * 1000):
            try:
                return await _answer(request, body, (fmt, data), meter)
            finally:
                audio, visemes = meter.take()
                await request.app[USAGE].record(key.key_id, visemes_audio_ms=audio, visemes=visemes)


async def _answer(
    request: web.Request,
    body: schemas.VisemesRequest,
    audio: tuple[AudioFormat, bytes],
    meter: guard.Meter,
) -> web.StreamResponse:
    settings, (fmt, data) = request.app[SETTINGS], audio
    engine = request.app[ENGINE].engine
    assert engine is not None
    use_text = settings.text_informed and body.use_text and bool(body.text and body.text.strip())
    lipsync = schemas.lipsync_config(settings, body.lipsync)
    if use_text and body.text is not None:  # the whole recording, aligned to its words
        try:
            stream = await engine.open_utterance(body.model, fmt, data, body.text, lipsync)
        except EngineOverloaded as exc:
            raise Saturated(str(exc)) from None
    else:
        stream = engine.open_stream(body.model, fmt, lipsync=lipsync)
    output = LipsyncOutput(lipsync)
    chunk_bytes = settings.sse_chunk_ms * fmt.sample_rate // 1000 * fmt.bytes_per_sample
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    try:
        await _stream_chunks(request, response, (stream, output, meter), data, chunk_bytes, fmt)
    except ConnectionError:  # the client left; its stream dies with this frame
        log.info("client left /v1/visemes mid-stream")
    return response


async def _stream_chunks(
    request: web.Request,
    response: web.StreamResponse,
    streams: tuple[EngineStream, LipsyncOutput, guard.Meter],
    data: bytes,
    chunk_bytes: int,
    fmt: AudioFormat,
) -> None:
    stream, output, meter = streams
    total = -(-len(data) // chunk_bytes)
    for index in range(total):
        if client_gone(request):
            log.info("client left /v1/visemes after chunk %d of %d", index, total)
            return  # the stream is dropped here: nothing else holds it
        chunk = data[index * chunk_bytes : (index + 1) * chunk_bytes]
        try:
            events = await stream.feed(chunk)
            if index == total - 1:
                events += await stream.flush()
        except EngineOverloaded as exc:
            await response.write(sse({"message": str(exc), "chunk_id": index + 1}, "error"))
            return
        meter.audio_ms += fmt.duration_ms(len(chunk))
        meter.visemes += len(events)
        duration_ms = round(fmt.duration_ms(len(chunk)))
        payload = {
            **output.push(events, stream.take_probs(), final=index == total - 1),
            "chunk_progress": f"{index + 1}/{total}",
            "chunk_duration_ms": duration_ms,
        }
        await response.write(sse(payload))
    # The end of the stream is written once the handler returns: after its usage is.


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/visemes", visemes)
