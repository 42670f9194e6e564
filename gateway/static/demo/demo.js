// The demo: text -> /v1/visemes-audio, or a WAV file -> /v1/visemes; the face follows
// the audio clock. window.visemeDemo is a read-only view of the state, for tests.
import { mouthSvg, PHONEMES } from "./mouths.js";
import { base64ToBytes, Player, readEvents } from "./player.js";

const $ = (id) => document.getElementById(id);
const mouth = $("mouth");
const label = $("viseme-label");
const timeline = $("timeline");
const status = (text) => { $("status").textContent = text; };

let apiKey = null; // page memory only
let player = null;
let shown = -1;

window.visemeDemo = Object.freeze({
  get viseme() { return shown; },
  get playing() { return player ? player.playing() : false; },
  get audioTime() { return player ? player.audioTime() : 0; },
  get visemeCount() { return player ? player.visemes.length : 0; },
  get durationMs() { return player ? player.scheduledMs : 0; },
  get audioContext() { return player ? player.ctx : null; },
});

function show(id) {
  if (id === shown) return;
  shown = id;
  mouth.innerHTML = mouthSvg(id);
  mouth.dataset.viseme = String(id);
  label.textContent = `${id} · ${PHONEMES[id]}`;
}

// The timeline spans all audio received so far (at least a second).
const timelineSpanMs = () => Math.max(player.scheduledMs, 1000);

function drawTimeline() {
  const g = timeline.getContext("2d");
  const { width, height } = timeline;
  g.clearRect(0, 0, width, height);
  if (!player || player.scheduledMs === 0) return;
  const scale = width / timelineSpanMs();
  const marks = player.visemes;
  g.font = "11px sans-serif";
  g.textBaseline = "middle";
  for (let i = 0; i < marks.length; i++) {
    const x = marks[i].offset * scale;
    const end = (i + 1 < marks.length ? marks[i + 1].offset : player.scheduledMs) * scale;
    const id = marks[i].visemeId;
    g.fillStyle = id === 0 ? "#e6e6e6" : `hsl(${(id * 47) % 360} 65% 70%)`;
    g.fillRect(x, 8, Math.max(end - x, 1), height - 16);
    if (end - x > 14) {
      g.fillStyle = "#222";
      g.fillText(String(id), x + 2, height / 2);
    }
  }
  const playhead = player.audioTime() * scale;
  g.fillStyle = "#c00";
  g.fillRect(playhead - 1, 0, 2, height);
}

function frame() {
  show(player ? player.visemeAt(player.audioTime()) : 0);
  drawTimeline();
  requestAnimationFrame(frame);
}

function newPlayer() {
  if (player) player.close();
  player = new Player();
  return player;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const detail = await response.json().catch(() => ({}));
    throw new Error(`${response.status}: ${detail.error || response.statusText}`);
  }
  return response;
}

async function speak(text, model) {
  const p = newPlayer();
  status("Synthesizing…");
  const response = await post("/v1/visemes-audio", { text, model });
  let chunks = 0;
  await readEvents(response, (type, data) => {
    if (type === "error") throw new Error(data.message);
    if (data.type === "audio") {
      p.schedulePcm16(base64ToBytes(data.data), data.sample_rate);
      chunks += 1;
      status(`Playing: ${chunks} audio chunks received`);
    } else if (data.type === "visemes") {
      p.addVisemes(data.visemes);
    }
  });
  status(`Done: ${chunks} audio chunks and ${p.visemes.length} visemes received`);
}

async function playWav(file) {
  const p = newPlayer();
  const bytes = new Uint8Array(await file.arrayBuffer());
  const audio = await p.ctx.decodeAudioData(bytes.buffer.slice(0));
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  status("Analysing…");
  const response = await post("/v1/visemes", { audio: btoa(binary) });
  let started = false;
  await readEvents(response, (type, data) => {
    if (type === "error") throw new Error(data.message);
    p.addVisemes(data.visemes);
    if (!started) { // play once the first visemes are in: the rest arrive faster than real time
      started = true;
      p.schedule(audio.getChannelData(0), audio.sampleRate);
      status("Playing");
    }
  });
  status(`Done: ${p.visemes.length} visemes`);
}

function guarded(action) {
  return async (...args) => {
    try {
      await action(...args);
    } catch (error) {
      status(`Error: ${error.message}`);
    }
  };
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = $("api-key").value.trim();
  $("api-key").value = ""; // nothing left in the DOM either
  $("controls").disabled = !apiKey;
  status(apiKey ? "Key set (kept in this page only). Type text or choose a WAV file." : "Enter an API key.");
});
$("text-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(speak)($("text").value, $("model").value);
});
$("wav").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) guarded(playWav)(file);
});

show(0);
requestAnimationFrame(frame);
