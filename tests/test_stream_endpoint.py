"""GET /v1/visemes/stream on the real gateway: live audio in, visemes out, frame by frame."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import numpy as np
import pytest

from gateway.settings import Settings
from tests.fakes.gateway import AUTH, Gateway, running_gateway
from tests.speech import espeak_chunks
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import LoadedModels
from viseme_engine.stream import VisemeStream
from viseme_engine.text_align import TextAligner

SENTENCE = "Bob may pay my mom."


@pytest.fixture
async def gw(settings: Settings, loaded_models: LoadedModels) -> Any:
    async with running_gateway(settings, loaded_models) as gateway:
        yield gateway


def frames(ms: int = 100) -> tuple[list[bytes], int]:
    return espeak_chunks(SENTENCE, ms)


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    value: dict[str, Any] = json.loads(message.data)
    return value


async def closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.CLOSE, message
    return int(message.data), str(message.extra)


def url(gw: Gateway) -> str:
    return f"{gw.ws_base}/v1/visemes/stream"


async def test_each_frame_gets_its_visemes_and_a_flush_the_last_ones(
    gw: Gateway, loaded_models: LoadedModels
) -> None:
    chunks, rate = frames()
    async with gw.http.ws_connect(url(gw), headers=AUTH) as ws:
        await ws.send_json({"sample_rate": rate, "encoding": "pcm_s16le"})
        ready = await receive(ws)
        assert (ready["type"], ready["sample_rate"], ready["model"]) == ("ready", rate, "default")
        got: list[tuple[int, int]] = []
        for index, chunk in enumerate(chunks):
            await ws.send_bytes(chunk)
            reply = await receive(ws)  # before the next frame is even sent
            assert reply["type"] == "visemes"
            assert reply["audio_offset_ms"] == index * 100
            assert reply["audio_duration_ms"] == round(len(chunk) / 2 / rate * 1000)
            got += [
                (v["visemeId"], reply["audio_offset_ms"] + v["offset"]) for v in reply["visemes"]
            ]
        await ws.send_json({"type": "flush"})
        final = await receive(ws)
        assert final["final"] is True
        got += [(v["visemeId"], final["audio_offset_ms"] + v["offset"]) for v in final["visemes"]]
        await ws.send_json({"type": "close"})
        assert (await closed(ws))[0] == 1000
    local = VisemeStream(loaded_models.models["default"], AudioFormat("pcm_s16le", rate))
    want = [(e.viseme_id, e.offset_ms) for c in chunks for e in local.feed(c)]
    want += [(e.viseme_id, e.offset_ms) for e in local.flush()]
    assert got == want  # exactly the visemes of the whole audio, at their true times
    assert 21 in [v for v, _ in got]


async def test_a_reset_starts_afresh_and_the_timeline_goes_on(
    gw: Gateway, loaded_models: LoadedModels
) -> None:
    chunks, rate = frames()
    half = len(chunks) // 2
    async with gw.http.ws_connect(url(gw), headers=AUTH) as ws:
        await ws.send_json({"sample_rate": rate, "lipsync": {"format": "oculus"}})
        assert (await receive(ws))["lipsync"]["format"] == "oculus"
        for chunk in chunks[:half]:
            await ws.send_bytes(chunk)
            await receive(ws)
        await ws.send_json({"type": "reset"})  # barge-in: the rest is a new utterance
        after = []
        for chunk in chunks[half:]:
            await ws.send_bytes(chunk)
            after.append(await receive(ws))
    assert after[0]["audio_offset_ms"] == half * 100
    fresh = VisemeStream(loaded_models.models["default"], AudioFormat("pcm_s16le", rate))
    want = [e.offset_ms for c in chunks[half:] for e in fresh.feed(c)]
    got = [r["audio_offset_ms"] - half * 100 + v["offset"] for r in after for v in r["visemes"]]
    assert got == want  # a fresh stream: nothing of the interrupted audio
    assert all(set(v) == {"viseme", "offset"} for r in after for v in r["visemes"])


async def test_arkit_frames_come_with_each_audio_frame(gw: Gateway) -> None:
    chunks, rate = frames()
    async with gw.http.ws_connect(url(gw), headers=AUTH) as ws:
        await ws.send_json({"sample_rate": rate, "lipsync": {"format": "arkit", "fps": 30}})
        await receive(ws)
        count = 0
        for chunk in chunks:
            await ws.send_bytes(chunk)
            shapes = (await receive(ws))["blendshapes"]
            assert (shapes["fps"], len(shapes["names"])) == (30, 52)
            count += len(shapes["frames"])
        await ws.send_json({"type": "flush"})
        count += len((await receive(ws))["blendshapes"]["frames"])
    duration_ms = sum(len(c) for c in chunks) / 2 / rate * 1000
    assert count == int(np.ceil(round(duration_ms // 10) * 30 / 100))


@pytest.mark.parametrize(
    ("first", "code", "reason"),
    [
        ({"sample_rate": 4000}, 1007, "Invalid config: sample_rate: Input should be greater"),
        ({"sample_rate": 16000, "encoding": "opus"}, 1007, "Invalid config: encoding:"),
        ({"sample_rate": 16000, "lipsync": {"fps": 24}}, 1007, "Invalid config: lipsync.fps:"),
        (b"\x00\x01", 1008, "the first message must be the JSON config"),
    ],
)
async def test_a_bad_config_is_an_error_then_a_close_that_says_why(
    gw: Gateway, first: dict[str, Any] | bytes, code: int, reason: str
) -> None:
    async with gw.http.ws_connect(url(gw), headers=AUTH) as ws:
        if isinstance(first, bytes):
            await ws.send_bytes(first)
        else:
            await ws.send_json(first)
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["code"] == "BAD_REQUEST"
        assert error["message"].startswith(reason)
        got_code, got_reason = await closed(ws)
    assert got_code == code
    assert got_reason.startswith(reason[:60])


async def test_an_unknown_control_message_ends_the_stream(gw: Gateway) -> None:
    async with gw.http.ws_connect(url(gw), headers=AUTH) as ws:
        await ws.send_json({"sample_rate": 16000})
        await receive(ws)
        await ws.send_json({"type": "pause"})
        assert (await receive(ws))["message"] == "unknown message type 'pause'"
        assert (await closed(ws))[0] == 1008


async def test_without_a_key_or_token_the_upgrade_is_refused(gw: Gateway) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-key-of-ours"}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await gw.http.ws_connect(url(gw), headers=headers)
        assert refused.value.status == 401


async def test_a_signed_url_for_browsers_fixes_the_shape_and_can_be_revoked(gw: Gateway) -> None:
    signed = await gw.sign("stream", {"viseme_model": "default", "lipsync": {"format": "oculus"}})
    assert signed["signed_url"].startswith(f"{gw.ws_base}/v1/visemes/stream?token=")
    chunks, rate = frames()
    async with gw.http.ws_connect(signed["signed_url"]) as ws:  # no API key: the token
        await ws.send_json({"sample_rate": rate, "lipsync": {"format": "sapi"}})
        assert (await receive(ws))["lipsync"]["format"] == "oculus"  # the token's wins
        await ws.send_bytes(chunks[0])
        assert all("viseme" in v for v in (await receive(ws))["visemes"])
        await gw.revoke(signed["signed_url"].split("token=")[1])
        async with asyncio.timeout(2.0):
            assert await closed(ws) == (4001, "token revoked")
    relay = await gw.sign("openai", {"ephemeral_token": "ek_1"})
    stream_with_relay_token = f"{url(gw)}?{relay['signed_url'].split('?')[1]}"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gw.http.ws_connect(stream_with_relay_token)
    assert refused.value.status == 401


async def test_a_flush_is_always_answered_and_a_huge_frame_refused(gw: Gateway) -> None:
    async with gw.http.ws_connect(url(gw), headers=AUTH) as ws:
        await ws.send_json({"sample_rate": 8000, "encoding": "mulaw"})
        await receive(ws)
        await ws.send_json({"type": "flush"})  # nothing to drain, yet an answer
        assert await receive(ws) == {
            "type": "visemes",
            "audio_offset_ms": 0,
            "final": True,
            "visemes": [],
        }
        await ws.send_bytes(b"\x7f" * 8000 * 11)  # 11 s in one frame
        error = await receive(ws)
        assert (error["code"], error["message"]) == (
            "FRAME_SIZE_EXCEEDED",
            "a frame carries at most 10 s of audio",
        )
        assert (await closed(ws))[0] == 1009


async def stream_timeline(
    gw: Gateway, chunks: list[bytes], rate: int, before: list[dict[str, Any]], use_text: bool = True
) -> list[tuple[int, int]]:
    """Messages `before` the audio, then the audio and a flush: the visemes' times."""
    got: list[tuple[int, int]] = []
    async with gw.http.ws_connect(url(gw), headers=AUTH) as ws:
        await ws.send_json({"sample_rate": rate, "use_text": use_text})
        assert (await receive(ws))["type"] == "ready"
        for message in before:
            await ws.send_json(message)
        for chunk in chunks:
            await ws.send_bytes(chunk)
            reply = await receive(ws)
            got += [
                (v["visemeId"], reply["audio_offset_ms"] + v["offset"]) for v in reply["visemes"]
            ]
        await ws.send_json({"type": "flush"})
        final = await receive(ws)
        got += [(v["visemeId"], final["audio_offset_ms"] + v["offset"]) for v in final["visemes"]]
    return got


async def test_text_messages_pin_the_visemes_unless_the_config_says_not(
    gw: Gateway, loaded_models: LoadedModels
) -> None:
    chunks, rate = frames()
    pieces: list[dict[str, Any]] = [
        {"type": "text", "text": "Bob may "},
        {"type": "text", "text": "pay my mom.", "final": True},
    ]
    got = await stream_timeline(gw, chunks, rate, pieces)
    aligner = TextAligner("en")
    aligner.add_text(SENTENCE, final=True)
    local = VisemeStream(
        loaded_models.models["default"], AudioFormat("pcm_s16le", rate), text=aligner
    )
    want = [(e.viseme_id, e.offset_ms) for c in chunks for e in local.feed(c)]
    want += [(e.viseme_id, e.offset_ms) for e in local.flush()]
    assert got == want
    acoustic = await stream_timeline(gw, chunks, rate, [])
    assert got != acoustic  # the text changed something
    assert await stream_timeline(gw, chunks, rate, pieces, use_text=False) == acoustic


async def test_a_text_message_with_times_that_do_not_fit_it_ends_the_stream(gw: Gateway) -> None:
    async with gw.http.ws_connect(url(gw), headers=AUTH) as ws:
        await ws.send_json({"sample_rate": 16000})
        await receive(ws)
        await ws.send_json({"type": "text", "text": "Bob", "char_ms": [0, 10]})
        error = await receive(ws)
        assert error["code"] == "BAD_REQUEST"
        assert "char_ms" in error["message"]
        assert (await closed(ws))[0] == 1007
