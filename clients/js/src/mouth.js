// The mouth on a timeline: viseme marks or blendshape frames placed in seconds of the audio
// clock, and the mouth state at any time in all three shapes (SAPI id, Oculus name, ARKit
// weights). Plain data, no DOM, no Web Audio: lipsync-player.js places things on the timeline.
import { ARKIT_NAMES, OCULUS_TO_SAPI, POSES, SAPI_TO_OCULUS } from "./tables.js";

const N = ARKIT_NAMES.length;
const INDEX = new Map(ARKIT_NAMES.map((name, i) => [name, i]));

/** The ARKit pose of a SAPI viseme as 52 weights in ARKIT_NAMES order. */
export function poseWeights(visemeId) {
  const out = new Float32Array(N);
  for (const [name, w] of Object.entries(POSES[visemeId] ?? POSES[0])) out[INDEX.get(name)] = w;
  return out;
}
const POSE_ROWS = POSES.map((_, v) => poseWeights(v));

/** The SAPI viseme whose pose is nearest to `weights` (52, ARKIT_NAMES order). */
export function nearestViseme(weights) {
  let best = 0;
  let bestDistance = Infinity;
  POSE_ROWS.forEach((row, v) => {
    let d = 0;
    for (let s = 0; s < N; s++) d += (row[s] - weights[s]) ** 2;
    if (d < bestDistance) [best, bestDistance] = [v, d];
  });
  return best;
}

/** {name: weight} from 52 weights. */
export function namedWeights(weights) {
  const out = {};
  ARKIT_NAMES.forEach((name, s) => { out[name] = weights[s]; });
  return out;
}

const lerp = (a, b, x) => a.map((w, s) => w + (b[s] - w) * x);
// The first index whose `at` is after t (items sorted by `at`).
function after(items, t) {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].at <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
function insert(items, item) {
  const i = after(items, item.at);
  if (i > 0 && items[i - 1].at === item.at) items[i - 1] = item;
  else items.splice(i, 0, item);
}

/** A rest mouth: SAPI 0, Oculus sil, all weights 0. */
export const REST = Object.freeze({ visemeId: 0, oculus: "sil", weights: POSE_ROWS[0] });

export class MouthTimeline {
  constructor({ blendMs = 60 } = {}) {
    this.blendS = blendMs / 1000; // sapi/oculus: the cross-fade from one pose to the next
    this.marks = []; // {at: s, visemeId, oculus}
    this.frames = []; // {at: s, weights: 52 numbers}
    this.frameStep = 1 / 60;
  }

  /** A SAPI entry {visemeId} or an Oculus one {viseme} starting at `at` seconds. */
  addEntry(at, entry) {
    if (typeof entry.viseme === "string") {
      insert(this.marks, { at, visemeId: OCULUS_TO_SAPI[entry.viseme] ?? 0, oculus: entry.viseme });
    } else {
      const id = entry.visemeId;
      insert(this.marks, { at, visemeId: id, oculus: SAPI_TO_OCULUS[id] ?? "sil" });
    }
  }

  /** An arkit block {fps, offset, names, frames}; `start` is where offset 0 falls (s). */
  addBlendshapes(start, block) {
    this.frameStep = 1 / block.fps;
    const order = block.names.map((name) => INDEX.get(name));
    block.frames.forEach((frame, j) => {
      const weights = new Float32Array(N);
      frame.forEach((w, k) => { if (order[k] !== undefined) weights[order[k]] = w; });
      insert(this.frames, { at: start + block.offset / 1000 + j * this.frameStep, weights });
    });
  }

  clear() {
    this.marks.length = 0;
    this.frames.length = 0;
  }

  /** Forgets what is over half a second before `t` (keeps the mouth as it was then). */
  prune(t) {
    const drop = (items) => Math.max(0, after(items, t - 0.5) - 1);
    this.marks.splice(0, drop(this.marks));
    this.frames.splice(0, drop(this.frames));
  }

  /** The mouth at `t` seconds: {visemeId, oculus, weights}; REST before anything. */
  stateAt(t) {
    if (this.frames.length > 0) return this.framesAt(t);
    const i = after(this.marks, t);
    if (i === 0) return REST;
    const mark = this.marks[i - 1];
    return { visemeId: mark.visemeId, oculus: mark.oculus, weights: this.blendAt(i - 1, t) };
  }

  // Each mark cross-fades from wherever the mouth was when it began to its own pose.
  blendAt(last, t) {
    const first = Math.max(0, last - 8);
    let from = POSE_ROWS[this.marks[first].visemeId];
    let to = from;
    let start = this.marks[first].at;
    for (let k = first + 1; k <= last; k++) {
      const mark = this.marks[k];
      from = lerp(from, to, this.progress(mark.at - start));
      to = POSE_ROWS[mark.visemeId];
      start = mark.at;
    }
    return Float32Array.from(lerp(from, to, this.progress(t - start)));
  }

  progress(dt) {
    return this.blendS > 0 ? Math.min(1, Math.max(0, dt / this.blendS)) : 1;
  }

  // arkit: linear between the two frames around t (neighbours at most 1.5 frames apart).
  framesAt(t) {
    const i = after(this.frames, t);
    if (i === 0) return REST;
    const a = this.frames[i - 1];
    const b = this.frames[i];
    let weights = a.weights;
    if (b && b.at - a.at <= 1.5 * this.frameStep) {
      weights = Float32Array.from(lerp(a.weights, b.weights, (t - a.at) / (b.at - a.at)));
    }
    const visemeId = nearestViseme(weights);
    return { visemeId, oculus: SAPI_TO_OCULUS[visemeId], weights };
  }
}
