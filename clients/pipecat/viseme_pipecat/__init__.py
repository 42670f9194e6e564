"""Visemes for a pipecat voice agent: a frame processor placed after any TTS service
(clients/pipecat/README.md)."""

from .processor import VISEMES_TYPE, VisemeProcessor, rtvi_message

__all__ = ["VISEMES_TYPE", "VisemeProcessor", "rtvi_message"]
