"""Visemes for a LiveKit Agents voice agent: an audio output wrapper that publishes
them to the room as the audio plays (clients/livekit/README.md)."""

from .output import TOPIC, VisemeAudioOutput, VisemeTextOutput, attach, room_publisher

__all__ = ["TOPIC", "VisemeAudioOutput", "VisemeTextOutput", "attach", "room_publisher"]
