import assert from "node:assert/strict";
import { test } from "node:test";
import { MouthTimeline, nearestViseme, poseWeights, REST } from "../src/mouth.js";
import { ARKIT_NAMES, OCULUS_NAMES, OCULUS_TO_SAPI, SAPI_TO_OCULUS } from "../src/tables.js";

const JAW = ARKIT_NAMES.indexOf("jawOpen");

test("each Oculus name stands for a SAPI viseme that maps back to it", () => {
  for (const name of OCULUS_NAMES) assert.equal(SAPI_TO_OCULUS[OCULUS_TO_SAPI[name]], name);
});

test("every pose is its own nearest viseme, or one sharing its weights", () => {
  for (let v = 0; v < 22; v++) {
    const near = nearestViseme(poseWeights(v));
    assert.deepEqual(poseWeights(near), poseWeights(v), `viseme ${v}`);
  }
});

test("sapi entries: the last one started shows, in all three shapes", () => {
  const mouth = new MouthTimeline({ blendMs: 0 });
  assert.equal(mouth.stateAt(1), REST);
  mouth.addEntry(1.0, { visemeId: 21 });
  mouth.addEntry(1.1, { visemeId: 2 });
  assert.equal(mouth.stateAt(0.99), REST);
  const closed = mouth.stateAt(1.05);
  assert.deepEqual([closed.visemeId, closed.oculus], [21, "PP"]);
  assert.ok(Math.abs(closed.weights[JAW] - 0.05) < 1e-6);
  const open = mouth.stateAt(1.2);
  assert.deepEqual([open.visemeId, open.oculus], [2, "aa"]);
  assert.ok(Math.abs(open.weights[JAW] - 0.7) < 1e-6);
});

test("oculus entries show the SAPI picture that stands for the name", () => {
  const mouth = new MouthTimeline();
  mouth.addEntry(0, { viseme: "PP" });
  mouth.addEntry(0.2, { viseme: "ou" });
  assert.deepEqual([mouth.stateAt(0.1).visemeId, mouth.stateAt(0.1).oculus], [21, "PP"]);
  assert.deepEqual([mouth.stateAt(0.3).visemeId, mouth.stateAt(0.3).oculus], [7, "ou"]);
});

test("poses cross-fade over blendMs, from wherever the mouth was", () => {
  const mouth = new MouthTimeline({ blendMs: 100 });
  mouth.addEntry(0, { visemeId: 0 });
  mouth.addEntry(1, { visemeId: 2 }); // jaw 0 -> 0.7
  const jaw = (t) => mouth.stateAt(t).weights[JAW];
  assert.ok(Math.abs(jaw(1.05) - 0.35) < 1e-6);
  assert.ok(Math.abs(jaw(1.2) - 0.7) < 1e-6);
  mouth.addEntry(1.05, { visemeId: 21 }); // half-way there: from 0.35 down to 0.05
  assert.ok(Math.abs(jaw(1.05) - 0.35) < 1e-6);
  assert.ok(Math.abs(jaw(1.1) - 0.2) < 1e-6);
  assert.equal(mouth.stateAt(1.1).visemeId, 21); // the id switches at once
});

test("arkit frames: linear between neighbours, held past the end", () => {
  const mouth = new MouthTimeline();
  const frame = (jaw) => ARKIT_NAMES.map((n) => (n === "jawOpen" ? jaw : 0));
  mouth.addBlendshapes(2, { fps: 50, offset: -20, names: [...ARKIT_NAMES], frames: [frame(0), frame(0.5)] });
  const jaw = (t) => mouth.stateAt(t).weights[JAW];
  assert.equal(jaw(1.9), 0); // before the first frame: rest
  assert.ok(Math.abs(jaw(1.99) - 0.25) < 1e-6); // frames at 1.98 and 2.00
  assert.ok(Math.abs(jaw(3) - 0.5) < 1e-6);
  assert.equal(mouth.stateAt(3).visemeId, nearestViseme(frame(0.5)));
});

test("names in another order land on the right shapes", () => {
  const mouth = new MouthTimeline();
  mouth.addBlendshapes(0, { fps: 60, offset: 0, names: ["tongueOut", "jawOpen"], frames: [[0.4, 0.15]] });
  const w = mouth.stateAt(0.001).weights;
  assert.ok(Math.abs(w[JAW] - 0.15) < 1e-6);
  assert.ok(Math.abs(w[ARKIT_NAMES.indexOf("tongueOut")] - 0.4) < 1e-6);
});

test("prune keeps the last half second as it was", () => {
  const mouth = new MouthTimeline({ blendMs: 0 });
  for (let i = 0; i < 100; i++) mouth.addEntry(i / 10, { visemeId: i % 22 });
  const times = [9.45, 9.6, 9.95];
  const before = times.map((t) => mouth.stateAt(t).visemeId);
  mouth.prune(9.95);
  assert.ok(mouth.marks.length <= 7, mouth.marks.length);
  assert.deepEqual(times.map((t) => mouth.stateAt(t).visemeId), before);
});
