// The adapters read each SDK's events as the gateway shapes them. The SDKs themselves run
// in Chromium against the fake providers (tests/test_demo_talk.py); here, their event
// objects as those SDKs hand them over.
import assert from "node:assert/strict";
import { test } from "node:test";
import { attachOpenAI } from "../src/openai.js";
import { visemeCallbacks } from "../src/genai.js";
import { startConversation } from "../src/elevenlabs.js";
import { bytesToBase64, floatToPcm16, visemeEvent } from "../src/events.js";
import { LipsyncPlayer } from "../src/lipsync-player.js";
import { ClockContext } from "./fake-audio.js";

const b64 = (ms, rate) => bytesToBase64(floatToPcm16(new Float32Array((rate * ms) / 1000)));
const VISEMES = { visemes: [{ visemeId: 21, offset: 0 }], audio_event_id: 1, subchunk_id: 1, total_chunks: 1, audio_duration: 100 };

class Emitter {
  constructor() { this.listeners = new Set(); }
  on(_name, l) { this.listeners.add(l); }
  off(_name, l) { this.listeners.delete(l); }
  emit(event) { for (const l of this.listeners) l(event); }
}

test("visemeEvent: one shape for each format", () => {
  const sapi = visemeEvent(VISEMES, "openai");
  assert.deepEqual([sapi.format, sapi.audioEventId, sapi.audioDurationMs, sapi.final], ["sapi", 1, 100, false]);
  const oculus = visemeEvent({ visemes: [{ viseme: "PP", offset: 0 }], audio_event_id: 2 }, "gemini");
  assert.equal(oculus.format, "oculus");
  const arkit = visemeEvent({ blendshapes: { fps: 60, offset: 0, names: [], frames: [] }, audio_event_id: 3, final: true }, "elevenlabs");
  assert.deepEqual([arkit.format, arkit.final, arkit.visemes], ["arkit", true, null]);
  assert.equal(visemeEvent({ type: "audio" }, "openai"), null);
  assert.equal(visemeEvent(undefined, "openai"), null);
});

test("openai: deltas play at the session's rate, visemes land, speech_started clears", () => {
  const ctx = new ClockContext();
  const player = new LipsyncPlayer({ audioContext: ctx, blendMs: 0 });
  const rt = new Emitter();
  const seen = [];
  const stop = attachOpenAI(rt, { player, onVisemes: (v) => seen.push(v) });
  rt.emit({ type: "session.created", session: { audio: { output: { format: { type: "audio/pcm", rate: 16000 } } } } });
  rt.emit({ type: "response.output_audio.delta", delta: b64(100, 16000), mascotVisemes: VISEMES });
  assert.ok(Math.abs(ctx.started[0].duration - 0.1) < 1e-9);
  assert.deepEqual(seen.map((v) => [v.provider, v.audioEventId]), [["openai", 1]]);
  assert.equal(player.state(0.15).visemeId, 21);
  rt.emit({ type: "response.output_audio.done", mascotVisemes: { ...VISEMES, final: true, visemes: [{ visemeId: 0, offset: 80 }] } });
  assert.equal(player.state(0.19).visemeId, 0);
  rt.emit({ type: "input_audio_buffer.speech_started" });
  assert.equal(player.interruptions.length, 1);
  stop();
  assert.equal(rt.listeners.size, 0);
});

test("genai: the first audio part plays at its mimeType's rate; interrupted clears", () => {
  const ctx = new ClockContext();
  const player = new LipsyncPlayer({ audioContext: ctx, blendMs: 0 });
  const got = [];
  const callbacks = visemeCallbacks({ onmessage: (m) => got.push(m) }, { player });
  const inline = { mimeType: "audio/pcm;rate=24000", data: b64(100, 24000) };
  callbacks.onmessage({ serverContent: { modelTurn: { parts: [{ inlineData: inline }] } }, mascotVisemes: VISEMES });
  assert.ok(Math.abs(ctx.started[0].duration - 0.1) < 1e-9);
  assert.equal(player.state(0.15).visemeId, 21);
  callbacks.onmessage({ serverContent: { interrupted: true } });
  assert.equal(player.state(0.15).visemeId, 0);
  assert.equal(got.length, 2); // the app's own handler still sees every message
});

test("elevenlabs: the SDK is muted, its audio played here with the visemes after it", async () => {
  const ctx = new ClockContext();
  const player = new LipsyncPlayer({ audioContext: ctx, blendMs: 0 });
  let volume = 1;
  const appEvents = [];
  const Conversation = {
    async startSession(options) {
      options.onConversationCreated({ setVolume: ({ volume: v }) => { volume = v; } });
      const meta = { agent_output_audio_format: "pcm_22050" };
      options.onIncomingEvent({ type: "conversation_initiation_metadata", conversation_initiation_metadata_event: meta });
      const audio = b64(100, 22050);
      options.onIncomingEvent({ type: "audio", audio_event: { audio_base_64: audio, event_id: 1 } });
      options.onAudio(audio); // as the SDK does for audio it keeps
      options.onIncomingEvent({ type: "visemes", ...VISEMES });
      options.onInterruption({ event_id: 1 });
      return "conversation";
    },
  };
  const onIncomingEvent = (e) => appEvents.push(e.type);
  const result = await startConversation(Conversation, { signedUrl: "wss://x", onIncomingEvent }, { player });
  assert.equal(result, "conversation");
  assert.equal(volume, 0);
  assert.ok(Math.abs(ctx.started[0].duration - 0.1) < 1e-9);
  assert.deepEqual(appEvents, ["conversation_initiation_metadata", "audio", "visemes"]);
  assert.equal(player.interruptions.length, 1);
});

test("elevenlabs, playback sdk: the SDK keeps playing, the player follows its queue", async () => {
  const ctx = new ClockContext();
  const player = new LipsyncPlayer({ audioContext: ctx, blendMs: 0 });
  let volume = 1;
  const Conversation = {
    async startSession(options) {
      options.onConversationCreated({ setVolume: ({ volume: v }) => { volume = v; } });
      options.onIncomingEvent({ type: "audio", audio_event: { event_id: 4 } });
      options.onAudio(b64(200, 16000));
      options.onIncomingEvent({ type: "visemes", ...VISEMES, audio_event_id: 4, visemes: [{ visemeId: 18, offset: 150 }] });
    },
  };
  await startConversation(Conversation, {}, { player, playback: "sdk" });
  assert.equal(volume, 1);
  assert.equal(ctx.started.length, 0); // nothing played twice
  assert.equal(player.state(0.1 + 0.16).visemeId, 18);
  assert.equal(player.state(0.31).playing, false);
});
