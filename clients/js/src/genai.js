// Gemini Live (`@google/genai`'s ai.live.connect): each LiveServerMessage keeps the
// gateway's top-level `mascotVisemes` beside serverContent. The app plays the audio parts;
// the player plays them for it.
import { visemeEvent } from "./events.js";

// The first audio part of a message, as the gateway reads it: {data, rate}.
function audioPart(message) {
  for (const part of message?.serverContent?.modelTurn?.parts ?? []) {
    const mime = part.inlineData?.mimeType ?? "";
    if (/^audio\/(pcm|L16)/i.test(mime)) {
      const rate = Number(/rate=(\d+)/.exec(mime)?.[1] ?? 24000);
      return { data: part.inlineData.data, rate };
    }
  }
  return null;
}

/**
 * Wraps live.connect's callbacks: each message's audio is played on `player` with its
 * visemes, an interruption clears it, then the app's own `onmessage` runs.
 */
export function visemeCallbacks(callbacks = {}, { player, onVisemes, onInterrupt } = {}) {
  let count = 0; // the gateway counts the session's audio messages: 1, 2, 3...
  return {
    ...callbacks,
    onmessage(message) {
      const audio = audioPart(message);
      if (audio) {
        count = message.mascotVisemes?.audio_event_id ?? count + 1;
        player?.play(count, audio.data, audio.rate);
      }
      const visemes = visemeEvent(message.mascotVisemes, "gemini");
      if (visemes) {
        player?.addVisemes(visemes);
        onVisemes?.(visemes, message);
      }
      if (message?.serverContent?.interrupted) {
        player?.interrupt();
        onInterrupt?.(message);
      }
      callbacks.onmessage?.(message);
    },
  };
}
