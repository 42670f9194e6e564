// Audio playback on the Web Audio clock, and the SSE reader for fetch() streams.
import { BlendshapeTrack } from "./blendshapes.js";

// Reads a text/event-stream response body; calls onEvent(type, data) per event.
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) type = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) onEvent(type, JSON.parse(data));
    }
  }
}

export function base64ToBytes(b64) {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

// Plays chunks back to back and maps the AudioContext clock to milliseconds of audio.
// A late chunk (network stall) starts a new segment after a gap: the speech position
// stops while nothing plays, so visemes never run ahead of the sound.
export class Player {
  constructor(format = "sapi") {
    this.ctx = new AudioContext();
    this.segments = []; // { at: context seconds, fromMs: speech ms, toMs }
    this.nextAt = 0;
    this.scheduledMs = 0;
    this.format = format; // the lip-sync format this playback was asked for
    this.visemes = []; // sapi, oculus: { visemeId, offset } (oculus adds viseme) in speech ms, sorted
    this.track = new BlendshapeTrack(); // arkit: the frames
  }

  // Schedules mono float samples right after what is already scheduled.
  schedule(samples, sampleRate) {
    const buffer = this.ctx.createBuffer(1, samples.length, sampleRate);
    buffer.copyToChannel(samples, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.ctx.destination);
    const now = this.ctx.currentTime;
    const durationMs = (samples.length / sampleRate) * 1000;
    const last = this.segments[this.segments.length - 1];
    if (!last || this.nextAt < now + 0.02) {
      // First chunk or an underrun: start a little ahead so the start is clean.
      this.nextAt = now + 0.1;
      this.segments.push({ at: this.nextAt, fromMs: this.scheduledMs, toMs: this.scheduledMs });
    }
    source.start(this.nextAt);
    this.nextAt += samples.length / sampleRate;
    this.scheduledMs += durationMs;
    this.segments[this.segments.length - 1].toMs = this.scheduledMs;
  }

  schedulePcm16(bytes, sampleRate) {
    const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1);
    const samples = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    this.schedule(samples, sampleRate);
  }

  addVisemes(list) {
    for (const v of list) this.visemes.push(v);
  }

  // Milliseconds of speech played so far, read from the audio clock.
  audioTime() {
    const now = this.ctx.currentTime;
    let ms = 0;
    for (const seg of this.segments) {
      if (now < seg.at) break;
      ms = Math.min(seg.toMs, seg.fromMs + (now - seg.at) * 1000);
    }
    return ms;
  }

  playing() {
    const now = this.ctx.currentTime;
    return this.segments.length > 0 && now >= this.segments[0].at && now < this.nextAt;
  }

  // The viseme entry showing at speech time `ms`: the last one that started; null for
  // silence (before the first, or when idle).
  entryAt(ms) {
    if (!this.playing()) return null;
    let entry = null;
    for (const v of this.visemes) {
      if (v.offset > ms) break;
      entry = v;
    }
    return entry;
  }

  visemeAt(ms) {
    const entry = this.entryAt(ms);
    return entry ? entry.visemeId : 0;
  }

  close() {
    this.ctx.close();
  }
}
