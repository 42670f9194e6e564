// The lip-sync player: plays the agent's audio on an AudioContext (or follows audio that
// something else plays), places each message's visemes where that audio is heard, and
// gives the mouth per animation frame. Cleared on interruption.
import { mulawToFloat, pcm16ToFloat } from "./events.js";
import { MouthTimeline, REST } from "./mouth.js";

const UNDERRUN_S = 0.02; // less than this left scheduled: start afresh, `leadMs` ahead

export class LipsyncPlayer {
  /**
   * @param {object} [options]
   * @param {AudioContext} [options.audioContext] the clock and the output (one is created)
   * @param {AudioNode} [options.output] where played audio goes (the context's destination)
   * @param {number} [options.leadMs] how far ahead a fresh run of audio starts (100)
   * @param {number} [options.blendMs] sapi/oculus: cross-fade between poses (60)
   */
  constructor({ audioContext, output, leadMs = 100, blendMs = 60 } = {}) {
    this.ctx = audioContext ?? new AudioContext();
    this.output = output ?? this.ctx.destination;
    this.leadS = leadMs / 1000;
    this.mouth = new MouthTimeline({ blendMs });
    this.chunks = new Map(); // audio message id -> {at, duration} (context seconds)
    this.sources = new Set();
    this.nextAt = 0; // where the next chunk starts
    this.runStart = 0; // where the current run of back-to-back audio started
    this.interruptions = []; // context times of interrupt()
    this.listeners = new Set();
    this.frameId = 0;
  }

  /** Context seconds of the sample the listener hears now (the output latency taken off). */
  heardTime() {
    const ctx = this.ctx;
    const stamp = typeof ctx.getOutputTimestamp === "function" ? ctx.getOutputTimestamp() : null;
    if (stamp && stamp.contextTime > 0 && stamp.performanceTime > 0 && ctx.state === "running") {
      const t = stamp.contextTime + (performance.now() - stamp.performanceTime) / 1000;
      return Math.min(t, ctx.currentTime);
    }
    return Math.max(0, ctx.currentTime - (ctx.outputLatency || 0));
  }

  // Where a chunk of `duration` s starts: right after the last, or afresh after an underrun.
  place(id, duration) {
    const now = this.ctx.currentTime;
    if (this.nextAt < now + UNDERRUN_S) {
      this.nextAt = now + this.leadS;
      this.runStart = this.nextAt;
    }
    const at = this.nextAt;
    this.nextAt += duration;
    this.chunks.set(id, { at, duration });
    return at;
  }

  /**
   * Plays one audio message: float samples, s16le bytes or base64 (`encoding` "pcm16",
   * the default, or "mulaw"). `id` is the message's audio_event_id.
   */
  play(id, audio, sampleRate, encoding = "pcm16") {
    let samples = audio;
    if (!(audio instanceof Float32Array)) {
      samples = encoding === "mulaw" ? mulawToFloat(audio) : pcm16ToFloat(audio);
    }
    if (samples.length === 0) return;
    const buffer = this.ctx.createBuffer(1, samples.length, sampleRate);
    buffer.copyToChannel(samples, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    source.start(this.place(id, samples.length / sampleRate));
    this.sources.add(source);
    source.onended = () => this.sources.delete(source);
  }

  /**
   * Follows an audio message that something else plays (an SDK's own output): placed as
   * if it started right after the one before, or `leadMs` from now.
   */
  follow(id, durationMs) {
    this.place(id, durationMs / 1000);
  }

  /** One VisemeEvent (events.js): placed on its audio message; dropped if that is unknown. */
  addVisemes(event) {
    const chunk = this.chunks.get(event.audioEventId);
    if (!chunk) return false;
    for (const v of event.visemes ?? []) this.mouth.addEntry(chunk.at + v.offset / 1000, v);
    if (event.blendshapes) this.mouth.addBlendshapes(chunk.at, event.blendshapes);
    return true;
  }

  /** Stops the audio, forgets its visemes: the mouth rests until new audio comes. */
  interrupt() {
    for (const source of this.sources) source.stop();
    this.sources.clear();
    this.chunks.clear();
    this.mouth.clear();
    this.nextAt = 0;
    this.interruptions.push(this.ctx.currentTime);
  }

  /**
   * The mouth now (or at context time `t`): {time, playing, audioEventId, audioMs,
   * visemeId, oculus, weights}. audioMs is how far into message audioEventId that is.
   */
  state(t = this.heardTime()) {
    const playing = t >= this.runStart && t < this.nextAt;
    let audioEventId = null;
    let audioMs = null;
    for (const [id, chunk] of this.chunks) {
      if (t >= chunk.at && t < chunk.at + chunk.duration) {
        [audioEventId, audioMs] = [id, (t - chunk.at) * 1000];
      }
    }
    const mouth = playing ? this.mouth.stateAt(t) : REST;
    return { time: t, playing, audioEventId, audioMs, ...mouth };
  }

  /** Calls `listener(state)` on every animation frame; returns a function that stops it. */
  onFrame(listener) {
    this.listeners.add(listener);
    if (!this.frameId) {
      const tick = () => {
        if (this.listeners.size === 0) { this.frameId = 0; return; }
        const state = this.state();
        this.mouth.prune(state.time);
        for (const [id, chunk] of this.chunks) {
          if (chunk.at + chunk.duration < state.time - 2) this.chunks.delete(id);
        }
        for (const l of this.listeners) l(state);
        this.frameId = requestAnimationFrame(tick);
      };
      this.frameId = requestAnimationFrame(tick);
    }
    return () => this.listeners.delete(listener);
  }

  close() {
    this.listeners.clear();
    this.interrupt();
    return this.ctx.close();
  }
}
