// The arkit format's blendshape frames on the speech timeline, and the weights between them.
// No DOM here: the track is plain data, the face (face.js) is drawn from what it returns.

export class BlendshapeTrack {
  constructor() {
    this.names = [];
    this.fps = 60;
    this.first = 0; // global frame number of frames[0]
    this.frames = []; // one array of weights per frame, contiguous
  }

  // One SSE "blendshapes" object: {fps, offset, names, frames}; offset is frames[0]'s time.
  add(block) {
    if (block.frames.length === 0) return;
    if (this.frames.length === 0) {
      this.names = block.names;
      this.fps = block.fps;
    }
    // The offset is rounded to a millisecond; the frame number is exact (frame i is at i/fps s).
    const start = Math.round((block.offset * this.fps) / 1000);
    if (this.frames.length === 0) this.first = start;
    block.frames.forEach((weights, j) => {
      const k = start + j - this.first;
      if (k < 0) return;
      // A gap (none is expected) holds the last frame rather than leaving holes.
      while (this.frames.length < k) this.frames.push(this.frames[this.frames.length - 1]);
      this.frames[k] = weights;
    });
  }

  get length() { return this.frames.length; }

  timeOf(k) { return ((this.first + k) * 1000) / this.fps; }

  // The weights at speech time `ms`: linear between the two frames around it, so the
  // face moves on every animation frame, not only when a new 60 fps frame starts.
  // Before the first frame it holds the first, after the last the last; null when empty.
  weightsAt(ms) {
    const n = this.frames.length;
    if (n === 0) return null;
    const t = (ms * this.fps) / 1000 - this.first;
    if (t <= 0) return this.frames[0];
    const i = Math.floor(t);
    if (i >= n - 1) return this.frames[n - 1];
    const a = t - i;
    const from = this.frames[i];
    const to = this.frames[i + 1];
    return from.map((w, s) => w + (to[s] - w) * a);
  }

  // {name: weight} for a weights array from this track.
  named(weights) {
    const out = {};
    this.names.forEach((name, s) => { out[name] = weights ? weights[s] : 0; });
    return out;
  }
}
