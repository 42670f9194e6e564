// OpenAI Realtime (`openai`'s OpenAIRealtimeWebSocket): the SDK keeps the gateway's
// `mascotVisemes` field on each audio delta (and on response.output_audio.done for the
// response's last visemes). The app plays the deltas; the player plays them for it.
import { visemeEvent } from "./events.js";

const AUDIO = new Set(["response.output_audio.delta", "response.audio.delta"]);
const DONE = new Set(["response.output_audio.done", "response.audio.done"]);

// The output format from session.created/updated (GA and beta shapes).
function outputFormat(session, current) {
  const format = session?.audio?.output?.format;
  if (format?.type === "audio/pcm") return { rate: format.rate ?? 24000, encoding: "pcm16" };
  if (format?.type === "audio/pcmu") return { rate: 8000, encoding: "mulaw" };
  if (session?.output_audio_format === "pcm16") return { rate: 24000, encoding: "pcm16" };
  if (session?.output_audio_format === "g711_ulaw") return { rate: 8000, encoding: "mulaw" };
  return current;
}

/**
 * Listens to an OpenAIRealtimeWebSocket (or OpenAIRealtimeWS): plays its audio deltas on
 * `player` with their visemes, clears it when the user starts speaking.
 * @returns {() => void} stops listening
 */
export function attachOpenAI(rt, { player, onVisemes, onInterrupt } = {}) {
  let format = { rate: 24000, encoding: "pcm16" };
  let count = 0; // the gateway counts the session's audio deltas: 1, 2, 3...
  const listener = (event) => {
    if (event.type === "session.created" || event.type === "session.updated") {
      format = outputFormat(event.session, format);
    } else if (AUDIO.has(event.type) || DONE.has(event.type)) {
      if (AUDIO.has(event.type)) {
        count = event.mascotVisemes?.audio_event_id ?? count + 1;
        player?.play(count, event.delta, format.rate, format.encoding);
      }
      const visemes = visemeEvent(event.mascotVisemes, "openai");
      if (visemes) {
        player?.addVisemes(visemes);
        onVisemes?.(visemes, event);
      }
    } else if (event.type === "input_audio_buffer.speech_started") {
      player?.interrupt();
      onInterrupt?.(event);
    }
  };
  rt.on("event", listener);
  return () => rt.off("event", listener);
}
