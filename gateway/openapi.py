"""The OpenAPI 3.1 document of every HTTP endpoint; request schemas come from `schemas`."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from providers.base import Provider, Route
from providers.registry import Registry

from . import __version__, schemas
from .errors import error_codes
from .routes_demo import ASSETS
from .usage import FIELDS

_REF = "#/components/schemas/{model}"
_ERROR = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "for people; may change"},
        "code": {"enum": error_codes(), "description": "stable, for programs"},
    },
}
_RETRY = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_USAGE_DAY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {f: {"type": "integer"} for f in FIELDS},
}
_USAGE = {
    "type": "object",
    "required": ["from", "to", "keys"],
    "properties": {
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key_id", "name", "days", "total"],
                "properties": {
                    "key_id": {"type": "string"},
                    "name": {"type": "string"},
                    "days": {"type": "object", "additionalProperties": _USAGE_DAY},
                    "total": _USAGE_DAY,
                },
            },
        },
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Invalid input; the message names the field",
        401: "Missing or invalid API key",
        403: "Not allowed: this token, provider, model or Origin (the code says which)",
        404: "No such file",
        413: "Request body too large",
        429: "Over the key's rate, quota or concurrency (the code says which)",
        503: "Revocation store unreachable",
    }
    out = {str(s): _json({"$ref": "#/components/schemas/Error"}, text[s]) for s in statuses}
    if "429" in out:
        out["429"]["headers"] = _RETRY
    return out


def _upgrade_responses(session: str, unauthorized: str, unavailable: str) -> dict[str, Any]:
    """A WebSocket route's answers: the upgrade, or an HTTP refusal before it."""
    error = {"$ref": "#/components/schemas/Error"}
    return {
        "101": {"description": f"Switching Protocols: {session}"},
        "400": _json(error, "Not a WebSocket upgrade"),
        "401": _json(error, unauthorized),
        "403": _json(error, "Token revoked or used up, or not allowed"),
        "429": _errors(429)["429"],
        "503": _json(error, unavailable),
    }


def _post(model: str, ok: dict[str, Any], summary: str, *errors: int) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
            },
            "responses": {"200": _json(ok, "Success"), **_errors(*errors)},
        }
    }


def _visemes() -> dict[str, Any]:
    operation = _post("VisemesRequest", {}, "Visemes for audio, as Server-Sent Events", 400, 403)
    responses = operation["post"]["responses"]
    responses["200"] = {
        "description": 'SSE: data: {"visemes":[{"visemeId","offset"}],"chunk_progress":"i/N",'
        '"chunk_duration_ms"}; event: error on failure',
        "content": {"text/event-stream": {"schema": _SSE_EVENT}},
    }
    responses.update(_errors(413, 429, 503))
    responses["403"]["description"] = "Invalid API key, or the model or Origin not allowed"
    responses["503"]["description"] = "Viseme engine not ready"
    return operation


def _visemes_audio() -> dict[str, Any]:
    operation = _visemes()
    operation["post"]["summary"] = "Speech and visemes for text, as Server-Sent Events"
    operation["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": _REF.format(model="VisemesAudioRequest")
    }
    operation["post"]["responses"]["200"]["description"] = (
        'SSE: data: {"type":"audio","data":"<base64 s16le mono>","sample_rate","sequence",'
        '"chunk_duration_ms"} then data: {"type":"visemes","visemes":[{"visemeId","offset"}],'
        '"chunk_duration_ms","audio_sequence","viseme_sequence":"i/N"}, offsets in ms from the '
        'start of the speech; event: error {"message","audio_sequence"} when TTS fails'
    )
    return operation


def _stream() -> dict[str, Any]:
    """As far as OpenAPI goes for a WebSocket: the upgrade, its auth, its answers."""
    description = (
        "WebSocket. First message: JSON {sample_rate, encoding: pcm_s16le|mulaw, model, "
        'lipsync, use_text}; answer {"type":"ready",...}. Then binary audio frames of any size, '
        'each answered by {"type":"visemes","audio_offset_ms","audio_duration_ms", <lipsync '
        'shape>}; JSON {"type":"text","text","final","char_ms"?} (the utterance\'s transcript, '
        'before or with its audio: the visemes follow its words), {"type":"flush"} (end of an '
        'utterance: the last visemes, "final":true), {"type":"reset"} (interruption), '
        '{"type":"close"}. Errors: {"type":"error","code","message"} then a close with the '
        'reason. docs/protocols.md, "The streaming endpoint".'
    )
    token = {"name": "token", "in": "query", "schema": {"type": "string"}}
    responses = _upgrade_responses(
        "the stream", "Missing or invalid API key or token", "Saturated or store unreachable"
    )
    operation = {
        "summary": "Visemes for live audio (WebSocket); an API key, or a stream signed URL",
        "description": description,
        "security": [{"bearer": []}, {}],
        "parameters": [token],
        "responses": responses,
    }
    return {"get": operation}


def _usage() -> dict[str, Any]:
    dates = [
        {"name": n, "in": "query", "schema": {"type": "string", "format": "date"}}
        for n in ("from", "to")
    ]
    key = {"name": "key_id", "in": "query", "schema": {"type": "string"}}
    operation = _get(
        "Metered usage per UTC day: the calling key's, or (an admin key) every key's",
        {"200": _json(_USAGE, "Usage"), **_errors(400, 401, 403, 503)},
    )
    operation["get"]["parameters"] = [*dates, key]
    operation["get"]["security"] = [{"bearer": []}]
    return operation


def _demo_page() -> dict[str, Any]:
    page = {"description": "The demo page", "content": {"text/html": {}}}
    return _get("Browser demo: text or a WAV file to a talking face", {"200": page})


def _demo_asset(names: list[str]) -> dict[str, Any]:
    types: dict[str, Any] = {"text/javascript": {}, "text/css": {}}
    operation = _get(
        "The demo page's scripts and styles",
        {"200": {"description": "The file", "content": types}, **_errors(404)},
    )
    operation["get"]["parameters"] = [
        {"name": "name", "in": "path", "required": True, "schema": {"enum": names}}
    ]
    return operation


def _websocket(takers: list[tuple[type[Provider[Any]], Route]]) -> dict[str, Any]:
    """A relay path: where its providers' SDKs may put the token, and what answers."""
    names = ", ".join(cls.name for cls, _ in takers)
    route = takers[0][1]
    parameters: list[dict[str, Any]] = []
    for _, r in takers:
        for where, found in (("query", r.query), ("header", r.headers)):
            for name in found:
                if not any(p["name"] == name for p in parameters):
                    parameters.append({"name": name, "in": where, "schema": {"type": "string"}})
    schemes = sorted({s for _, r in takers for s in r.schemes})
    if schemes:
        parameters.append(
            {
                "name": "Authorization",
                "in": "header",
                "description": " or ".join(f"{s.title()} <token>" for s in schemes),
                "schema": {"type": "string"},
            }
        )
    for name, values in route.path_values.items():
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": {"enum": list(values)}}
        )
    responses = _upgrade_responses(
        "the relay session", "Missing or invalid token", "Revocation store unreachable"
    )
    if route.path_values:
        responses["404"] = _json({"$ref": "#/components/schemas/Error"}, "Unknown method")
    summary = f"{route.summary} ({names}); the signed URL's token in one of the parameters"
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}


def _get(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": responses}}


_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"enum": ["message", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
_REVOKED = {
    "type": "object",
    "required": ["revoked"],
    "properties": {
        "revoked": {"enum": ["token", "jti", "all", "none"]},
        "jti": {"type": "string"},
        "detail": {"type": "string"},
        "issued_before": {"type": "number"},
    },
}
_INTROSPECTION = {
    "type": "object",
    "required": ["active"],
    "properties": {
        "active": {"type": "boolean"},
        "jti": {"type": "string"},
        "exp": {"type": "number"},
        "iat": {"type": "number"},
        "provider": {"type": "string", "description": "the token's provider"},
        "viseme_model": {"enum": ["default", "indonesian"]},
    },
}
_READY = {
    "type": "object",
    "required": ["ready"],
    "properties": {
        "ready": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
}
_HEALTH = {
    "type": "object",
    "required": ["status", "version", "device", "cuda_available", "models_loaded", "redis"],
    "properties": {
        "status": {"enum": ["ok", "degraded", "draining"]},
        "version": {"type": "string"},
        "device": {"type": ["string", "null"]},
        "cuda_available": {"type": "boolean"},
        "models_loaded": {"type": "array", "items": {"type": "string"}},
        "redis": {"enum": ["ok", "unreachable", "disabled"]},
    },
}


def document(providers: Registry, public_url: str | None = None) -> dict[str, Any]:

    _, defs = models_json_schema(
        [
            (providers.signed_url_request, "validation"),
            (schemas.RevokeRequest, "validation"),
            (schemas.IntrospectRequest, "validation"),
            (schemas.VisemesRequest, "validation"),
            (schemas.VisemesAudioRequest, "validation"),
        ],
        ref_template=_REF,
    )
    components = {**defs["$defs"], "Error": _ERROR}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "viseme-gateway", "version": __version__},
        "paths": {
            "/v1/get-signed-url": _post(
                "SignedUrlRequest",
                {"oneOf": _unique([cls.signed_schema for cls in providers])},
                "Issue a signed URL for a provider",
                400,
                401,
                403,
                413,
                429,
                503,
            ),
            "/v1/tokens/revoke": _post(
                "RevokeRequest",
                _REVOKED,
                "Revoke one token or all of a key's",
                400,
                401,
                403,
                413,
                503,
            ),
            "/v1/tokens/introspect": _post(
                "IntrospectRequest",
                _INTROSPECTION,
                "RFC 7662 style token check",
                400,
                401,
                413,
                503,
            ),
            "/v1/usage": _usage(),
            "/v1/visemes": _visemes(),
            "/v1/visemes-audio": _visemes_audio(),
            "/v1/visemes/stream": _stream(),
            "/demo": _demo_page(),
            "/demo/{name}": _demo_asset(sorted(ASSETS)),
            "/livez": _get("Process is up", {"200": _json({"type": "object"}, "Alive")}),
            "/readyz": _get(
                "Ready for traffic",
                {"200": _json(_READY, "Ready"), "503": _json(_READY, "Not ready")},
            ),
            "/health": _get("Health details", {"200": _json(_HEALTH, "Health")}),
            "/metrics": _get(
                "Prometheus metrics",
                {"200": {"description": "Metrics", "content": {"text/plain": {}}}},
            ),
            "/openapi.json": _get(
                "This document", {"200": _json({"type": "object"}, "OpenAPI document")}
            ),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    for path, takers in providers.paths().items():
        doc["paths"][takers[0][1].openapi_path or path] = _websocket(takers)
    if public_url:
        doc["servers"] = [{"url": public_url}]
    return doc


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
