"""Visemes from viseme-gateway in app code, one event shape whatever the provider.

The gateway adds visemes to each provider's own stream (the gateway's
docs/protocols.md, "The viseme object"): OpenAI and Gemini audio messages gain
a `mascotVisemes` field, ElevenLabs gets a `visemes` message after each audio
event. Two of the Python SDKs drop what they do not know, so each module here
gives one way to get them:

- `viseme_gateway_client.openai.visemes(event)`: the SDK keeps the field;
- `viseme_gateway_client.elevenlabs.VisemeConversation`: an AsyncConversation
  whose `on_visemes` callback gets them (the SDK ignores unknown messages);
- `viseme_gateway_client.genai.receive(session)`: (message, visemes) pairs
  from a google-genai live session (the SDK keeps known fields only).
"""

from .events import Visemes, parse

__all__ = ["Visemes", "parse"]
