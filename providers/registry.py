"""The providers a gateway serves: the built-in three plus plugin modules.

Also the upstream URL settings of all of them and of the TTS engines.

A plugin module (named in VISEME_GATEWAY_PROVIDER_MODULES) exposes `PROVIDERS`,
a tuple of Provider classes; nothing runs at import beyond defining them. The
gateway derives from a registry its signed-URL request schema, its WebSocket
routes, its upstream URL settings and its OpenAPI entries.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from .base import Provider, ProviderConfig, Route, Strict, UrlSetting
from .elevenlabs import ElevenLabs
from .gemini_live import GeminiLive
from .openai_realtime import OpenAIRealtime
from .tts import ENGINES

BUILTIN: tuple[type[Provider[Any]], ...] = (ElevenLabs, OpenAIRealtime, GeminiLive)
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class RegistryError(Exception):
    """A plugin that cannot be loaded or clashes with another provider."""


class Registry:
    def __init__(
        self,
        providers: Sequence[type[Provider[Any]]],
        local: Mapping[str, type[ProviderConfig]] | None = None,
    ) -> None:
        """`local`: token kinds the gateway serves itself, with no upstream (the
        streaming viseme endpoint): signed like a provider's, never relayed."""
        self._by_name: dict[str, type[Provider[Any]]] = {}
        self.local = dict(local or {})
        urls: dict[str, UrlSetting] = {}
        for cls in providers:
            if not _NAME.match(cls.name) or cls.name in self._by_name:
                raise RegistryError(f"provider name {cls.name!r} is invalid or taken")
            self._by_name[cls.name] = cls
        declared = [
            *(u for c in providers for u in c.urls),
            *(u for e in ENGINES.values() for u in e.urls),
        ]
        for setting in declared:
            if urls.setdefault(setting.name, setting).default != setting.default:
                raise RegistryError(f"URL setting {setting.name} declared twice, differently")
        self.url_settings = tuple(urls.values())
        if set(self.local) & set(self._by_name):
            raise RegistryError(f"{sorted(set(self.local) & set(self._by_name))} taken twice")
        kinds = [(c.name, c.config_model) for c in providers] + list(self.local.items())
        self.signed_url_request = _request_model(kinds)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    @property
    def token_kinds(self) -> tuple[str, ...]:
        """Every `provider` a signed URL may name: the providers and the local kinds."""
        return (*self._by_name, *self.local)

    def __getitem__(self, name: str) -> type[Provider[Any]]:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[type[Provider[Any]]]:
        return iter(self._by_name.values())

    def paths(self) -> dict[str, list[tuple[type[Provider[Any]], Route]]]:
        """Each WebSocket path, with the providers (and their route) that take it."""
        out: dict[str, list[tuple[type[Provider[Any]], Route]]] = {}
        for cls in self:
            for route in cls.routes:
                out.setdefault(route.path, []).append((cls, route))
        return out


def load(
    modules: Sequence[str] = (), local: Mapping[str, type[ProviderConfig]] | None = None
) -> Registry:
    """The built-in providers plus those of each plugin module."""
    providers = list(BUILTIN)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise RegistryError(f"cannot import provider module {name!r}: {exc}") from None
        found = getattr(module, "PROVIDERS", None)
        if not isinstance(found, tuple) or not all(
            isinstance(c, type) and issubclass(c, Provider) for c in found
        ):
            raise RegistryError(f"module {name!r} has no PROVIDERS tuple of Provider classes")
        providers.extend(found)
    return Registry(providers, local)


def _request_model(kinds: Sequence[tuple[str, type[ProviderConfig]]]) -> type[BaseModel]:
    """`{"config": {"provider": <name>, "provider_config": {...}}}`, one branch each."""
    specs: list[type[BaseModel]] = [
        create_model(
            config.__name__.removesuffix("Config") + "Spec",
            __base__=Strict,
            provider=(Literal[name], ...),  # type: ignore[arg-type]  # a run-time Literal
            provider_config=(config, ...),
        )
        for name, config in kinds
    ]
    config: Any = (
        specs[0]
        if len(specs) == 1
        else Annotated[Union[tuple(specs)], Field(discriminator="provider")]  # noqa: UP007  # built at run time
    )
    return create_model("SignedUrlRequest", __base__=Strict, config=(config, ...))
