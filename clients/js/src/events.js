// The one viseme event shape, whatever the provider, from the gateway's viseme object
// (docs/protocols.md, "The viseme object"): ElevenLabs' `visemes` message, OpenAI's and
// Gemini's `mascotVisemes` field. Plain data, no DOM.

/**
 * @param {unknown} object the gateway's viseme object
 * @param {"elevenlabs" | "openai" | "gemini"} provider
 * @returns {import("./index.js").VisemeEvent | null} null when `object` is not one
 */
export function visemeEvent(object, provider) {
  if (!object || typeof object !== "object") return null;
  const { visemes, blendshapes, audio_event_id: id } = /** @type {any} */ (object);
  if (!Array.isArray(visemes) && !(blendshapes && Array.isArray(blendshapes.frames))) return null;
  if (typeof id !== "number" && typeof id !== "string") return null;
  const format = blendshapes ? "arkit" : visemes.some((v) => "viseme" in v) ? "oculus" : "sapi";
  return {
    provider,
    format,
    audioEventId: id,
    visemes: Array.isArray(visemes) ? visemes : null,
    blendshapes: blendshapes ?? null,
    audioDurationMs: typeof object.audio_duration === "number" ? object.audio_duration : null,
    final: object.final === true,
  };
}

/** Standard base64 to bytes. */
export function base64ToBytes(b64) {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** Bytes to standard base64. */
export function bytesToBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** s16le PCM (bytes or base64) to float samples in [-1, 1). */
export function pcm16ToFloat(data) {
  const bytes = typeof data === "string" ? base64ToBytes(data) : data;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength >> 1);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, true) / 32768;
  return out;
}

/** G.711 mu-law (bytes or base64) to float samples. */
export function mulawToFloat(data) {
  const bytes = typeof data === "string" ? base64ToBytes(data) : data;
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const u = ~bytes[i] & 0xff;
    const magnitude = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    out[i] = ((u & 0x80 ? 0x84 - magnitude : magnitude - 0x84) / 32768);
  }
  return out;
}

/** Float samples to s16le bytes (for a microphone's input to a provider). */
export function floatToPcm16(samples) {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return bytes;
}
