// A stand-in for the Web Audio calls the player makes (node has no AudioContext): a clock
// the test sets, and a record of what was started when. The real one runs in Chromium
// (tests/test_demo_talk.py).
export class ClockContext {
  constructor() {
    this.currentTime = 0;
    this.state = "running";
    this.outputLatency = 0;
    this.destination = {};
    this.started = []; // {at, duration, stopped}
  }
  createBuffer(channels, length, sampleRate) {
    return { duration: length / sampleRate, copyToChannel() {} };
  }
  createBufferSource() {
    const record = { at: null, duration: 0, stopped: false };
    return {
      connect() {},
      set buffer(b) { record.duration = b.duration; },
      start: (at) => { record.at = at; this.started.push(record); },
      stop() { record.stopped = true; },
    };
  }
  async close() { this.state = "closed"; }
}
