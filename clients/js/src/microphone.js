// The microphone as s16le PCM at the rate a provider wants, for the SDKs that leave input
// to the app (OpenAI Realtime: input_audio_buffer.append; Gemini: sendRealtimeInput).
import { bytesToBase64, floatToPcm16 } from "./events.js";

/**
 * Calls `onAudio(base64Pcm16)` about every 85 ms until `stop()` is called.
 * @returns {Promise<{stop: () => Promise<void>, sampleRate: number}>}
 */
export async function microphone({ sampleRate = 24000, onAudio }) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
  });
  const ctx = new AudioContext({ sampleRate });
  const source = ctx.createMediaStreamSource(stream);
  // A ScriptProcessor needs no worklet module, so no extra file to serve or bundle.
  const node = ctx.createScriptProcessor(2048, 1, 1);
  node.onaudioprocess = (event) => {
    onAudio(bytesToBase64(floatToPcm16(event.inputBuffer.getChannelData(0))));
  };
  const mute = ctx.createGain();
  mute.gain.value = 0;
  source.connect(node);
  node.connect(mute);
  mute.connect(ctx.destination);
  await ctx.resume();
  return {
    sampleRate: ctx.sampleRate,
    async stop() {
      node.onaudioprocess = null;
      for (const track of stream.getTracks()) track.stop();
      await ctx.close();
    },
  };
}
