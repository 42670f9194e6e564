// ElevenLabs Agents (`@elevenlabs/client`'s Conversation): the SDK hands the gateway's
// `visemes` messages to onIncomingEvent (never onMessage) and plays the audio itself.
// playback "kit" (the default) mutes the SDK (setVolume 0) and plays the audio it hands to
// onAudio on the player, so the visemes sit on the audio clock exactly; "sdk" leaves the
// SDK playing and follows its queue (chunks back to back from their arrival), which is as
// close as its public API allows (it never says when a chunk starts to sound).
import { base64ToBytes, visemeEvent } from "./events.js";

function outputFormat(name, current) {
  const pcm = /^pcm_(\d+)$/.exec(name ?? "");
  if (pcm) return { rate: Number(pcm[1]), encoding: "pcm16" };
  if (name === "ulaw_8000") return { rate: 8000, encoding: "mulaw" };
  return current;
}

/**
 * Conversation.startSession with visemes: the options the app would give it, plus
 * {player, onVisemes, onInterrupt, playback}. Resolves to the conversation.
 */
export function startConversation(Conversation, options, kit = {}) {
  const { player, onVisemes, onInterrupt, playback = "kit" } = kit;
  let format = { rate: 16000, encoding: "pcm16" }; // until the metadata says
  let audioId = 0; // the event_id of the audio message the SDK is handling
  return Conversation.startSession({
    ...options,
    onConversationCreated(conversation) {
      if (playback === "kit" && player) conversation.setVolume({ volume: 0 });
      options.onConversationCreated?.(conversation);
    },
    onIncomingEvent(event) {
      if (event?.type === "conversation_initiation_metadata") {
        const meta = event.conversation_initiation_metadata_event;
        format = outputFormat(meta?.agent_output_audio_format, format);
      } else if (event?.type === "audio") {
        audioId = event.audio_event?.event_id ?? audioId;
      } else if (event?.type === "visemes") {
        const visemes = visemeEvent(event, "elevenlabs");
        if (visemes) {
          player?.addVisemes(visemes);
          onVisemes?.(visemes, event);
        }
      }
      options.onIncomingEvent?.(event);
    },
    // Called only for audio the SDK keeps (not what an interruption made stale).
    onAudio(base64) {
      if (player && playback === "kit") player.play(audioId, base64, format.rate, format.encoding);
      else if (player) {
        const bytes = base64ToBytes(base64).length;
        const samples = format.encoding === "mulaw" ? bytes : bytes / 2;
        player.follow(audioId, (samples / format.rate) * 1000);
      }
      options.onAudio?.(base64);
    },
    onInterruption(event) {
      player?.interrupt();
      onInterrupt?.(event);
      options.onInterruption?.(event);
    },
  });
}
