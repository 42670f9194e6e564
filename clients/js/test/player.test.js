import assert from "node:assert/strict";
import { test } from "node:test";
import { floatToPcm16 } from "../src/events.js";
import { LipsyncPlayer } from "../src/lipsync-player.js";
import { ClockContext } from "./fake-audio.js";

const tone = (ms, rate = 16000) => floatToPcm16(new Float32Array((rate * ms) / 1000).fill(0.1));

function player() {
  const ctx = new ClockContext();
  return [new LipsyncPlayer({ audioContext: ctx, leadMs: 100, blendMs: 0 }), ctx];
}

test("audio messages play back to back, a lead ahead; visemes sit on their message", () => {
  const [p, ctx] = player();
  ctx.currentTime = 10;
  p.play(1, tone(100), 16000);
  p.play(2, tone(100), 16000);
  assert.deepEqual(ctx.started.map((s) => s.at), [10.1, 10.2]);
  p.addVisemes({ audioEventId: 2, visemes: [{ visemeId: 21, offset: -10 }, { visemeId: 2, offset: 40 }] });
  const at = (t) => p.state(t);
  assert.equal(at(10.15).visemeId, 0);
  assert.equal(at(10.195).visemeId, 21); // a negative offset: began in message 1
  assert.deepEqual([at(10.25).visemeId, at(10.25).audioEventId], [2, 2]);
  assert.ok(Math.abs(at(10.25).audioMs - 50) < 1e-6);
  assert.equal(at(10.31).playing, false); // after the audio: at rest
  assert.equal(at(10.31).visemeId, 0);
});

test("visemes for audio it never got are dropped", () => {
  const [p] = player();
  assert.equal(p.addVisemes({ audioEventId: 9, visemes: [{ visemeId: 21, offset: 0 }] }), false);
});

test("an underrun starts the next message afresh, a lead after it arrives", () => {
  const [p, ctx] = player();
  p.play(1, tone(100), 16000);
  ctx.currentTime = 5;
  p.play(2, tone(100), 16000);
  assert.deepEqual(ctx.started.map((s) => s.at), [0.1, 5.1]);
  assert.equal(p.state(3).playing, false);
});

test("interrupt stops the audio and forgets its visemes", () => {
  const [p, ctx] = player();
  p.play(1, tone(500), 16000);
  p.addVisemes({ audioEventId: 1, visemes: [{ visemeId: 21, offset: 0 }] });
  ctx.currentTime = 0.2;
  assert.equal(p.state(0.2).visemeId, 21);
  p.interrupt();
  assert.equal(ctx.started[0].stopped, true);
  assert.deepEqual([p.state(0.2).visemeId, p.state(0.2).playing], [0, false]);
  assert.equal(p.addVisemes({ audioEventId: 1, visemes: [{ visemeId: 21, offset: 0 }] }), false);
  assert.deepEqual(p.interruptions, [0.2]);
  p.play(2, tone(100), 16000);
  assert.ok(Math.abs(ctx.started[1].at - 0.3) < 1e-9);
});

test("follow places audio something else plays, without playing it", () => {
  const [p, ctx] = player();
  p.follow(7, 200);
  p.addVisemes({ audioEventId: 7, visemes: [{ visemeId: 15, offset: 100 }] });
  assert.equal(ctx.started.length, 0);
  assert.equal(p.state(0.25).visemeId, 15);
});

test("heard time takes the output latency off the context clock", () => {
  const [p, ctx] = player();
  ctx.currentTime = 2;
  ctx.outputLatency = 0.05;
  assert.ok(Math.abs(p.heardTime() - 1.95) < 1e-9);
});

test("mu-law audio is decoded at its rate", () => {
  const [p, ctx] = player();
  p.play(1, new Uint8Array(800).fill(0xff), 8000, "mulaw");
  assert.ok(Math.abs(ctx.started[0].duration - 0.1) < 1e-9);
});
