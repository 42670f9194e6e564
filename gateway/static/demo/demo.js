// The demo: text -> /v1/visemes-audio, or a WAV file -> /v1/visemes, in the lip-sync format
// chosen (sapi, oculus or arkit); the face follows the audio clock. window.visemeDemo is a
// read-only view of the state, for tests.
import { faceSvg, headPath, lipGap } from "./face.js";
import { mouthSvg, OCULUS, PHONEMES } from "./mouths.js";
import { base64ToBytes, Player, readEvents } from "./player.js";

const $ = (id) => document.getElementById(id);
const mouth = $("mouth");
const head = $("head");
const label = $("viseme-label");
const timeline = $("timeline");
const status = (text) => { $("status").textContent = text; };

let apiKey = null; // page memory only
let player = null;
let talking = false; // talk.js draws the face while a conversation is on
// What the face shows. sapi and oculus: a SAPI picture (`shown`), and for oculus the
// name it stands for. arkit: the weights, computed for speech time `shownAt`.
let shownKey = "";
let shown = 0;
let shownName = null;
let weights = null;
let shownAt = 0;
let faceMarkup = ""; // arkit: the mouth markup shown

const LIPS_CLOSED_PX = 1; // lips this close (in the face's 200 px viewBox) touch

window.visemeDemo = Object.freeze({
  get viseme() { return weights ? null : shown; }, // the SAPI picture; null in arkit
  get oculus() { return shownName; }, // the Oculus name shown; null unless oculus
  get format() { return player ? player.format : $("format").value; },
  get playing() { return player ? player.playing() : false; },
  get audioTime() { return player ? player.audioTime() : 0; },
  get visemeCount() { return player ? player.visemes.length : 0; },
  get durationMs() { return player ? player.scheduledMs : 0; },
  get audioContext() { return player ? player.ctx : null; },
  // arkit: the weights shown ({name: weight}, a fresh object per animation frame), the
  // speech time they were interpolated for, and how far apart they hold the lips.
  get weights() { return weights; },
  get shownAt() { return shownAt; },
  get jawOpen() { return weights ? weights.jawOpen || 0 : null; },
  get lipGap() { return weights ? lipGap(weights) : null; },
  get lipsClosed() { return weights ? lipGap(weights) < LIPS_CLOSED_PX : null; },
  get frameCount() { return player ? player.track.length : 0; },
  get blendshapes() { // the frames received so far (copies)
    if (!player || player.track.length === 0) return null;
    const { fps, first, names, frames } = player.track;
    return { fps, first, names: [...names], frames: frames.map((w) => [...w]) };
  },
});

function showViseme(entry, format) {
  const id = entry ? entry.visemeId : 0;
  const name = format === "oculus" ? (entry ? entry.viseme : "sil") : null;
  const key = `${format}:${id}:${name}`;
  if (key === shownKey) return;
  shownKey = key;
  shown = id;
  shownName = name;
  weights = null;
  faceMarkup = "";
  head.setAttribute("d", headPath(0));
  mouth.innerHTML = mouthSvg(id);
  mouth.dataset.viseme = String(id);
  label.textContent = name === null ? `${id} · ${PHONEMES[id]}` : `${name} · ${OCULUS[name]?.phonemes ?? ""}`;
}

// The strongest mouth shape besides the jaw, for the caption ("mouthFunnel 0.42").
function strongest(w) {
  let best = null;
  for (const [name, value] of Object.entries(w)) {
    if (name !== "jawOpen" && value > 0.05 && (!best || value > best[1])) best = [name, value];
  }
  return best ? ` · ${best[0].replace(/(Left|Right)$/, "")} ${best[1].toFixed(2)}` : "";
}

function showWeights(track, ms) {
  weights = track.named(track.weightsAt(ms));
  shownAt = ms;
  shownName = null;
  shownKey = "arkit";
  const jaw = weights.jawOpen || 0;
  const markup = faceSvg(weights);
  if (markup !== faceMarkup) { // the face only changes when a weight does
    faceMarkup = markup;
    mouth.innerHTML = markup;
    head.setAttribute("d", headPath(jaw));
    delete mouth.dataset.viseme;
    label.textContent = `jawOpen ${jaw.toFixed(2)}${strongest(weights)}`;
  }
}

// The timeline spans all audio received so far (at least a second).
const timelineSpanMs = () => Math.max(player.scheduledMs, 1000);

function drawMarks(g, scale, height) {
  const marks = player.visemes;
  for (let i = 0; i < marks.length; i++) {
    const x = marks[i].offset * scale;
    const end = (i + 1 < marks.length ? marks[i + 1].offset : player.scheduledMs) * scale;
    const id = marks[i].visemeId;
    g.fillStyle = id === 0 ? "#e6e6e6" : `hsl(${(id * 47) % 360} 65% 70%)`;
    g.fillRect(x, 8, Math.max(end - x, 1), height - 16);
    const text = marks[i].viseme ?? String(id); // the Oculus name, or the SAPI id
    if (g.measureText(text).width + 3 < end - x) {
      g.fillStyle = "#222";
      g.fillText(text, x + 2, height / 2);
    }
  }
}

// arkit: jawOpen as a filled curve (0 at the bottom, 1 at the top), lip press as a line.
function drawCurves(g, scale, height) {
  const track = player.track;
  const y = (w) => height - 8 - w * (height - 16);
  const curve = (s) => {
    g.beginPath();
    for (let k = 0; k < track.length; k++) g.lineTo(track.timeOf(k) * scale, y(track.frames[k][s]));
  };
  const jaw = track.names.indexOf("jawOpen");
  if (track.length === 0 || jaw < 0) return;
  curve(jaw);
  g.lineTo(track.timeOf(track.length - 1) * scale, y(0));
  g.lineTo(track.timeOf(0) * scale, y(0));
  g.fillStyle = "hsl(200 60% 78%)";
  g.fill();
  curve(jaw);
  g.strokeStyle = "hsl(200 60% 35%)";
  g.lineWidth = 1.5;
  g.stroke();
  const press = track.names.indexOf("mouthPressLeft");
  if (press >= 0) {
    curve(press);
    g.strokeStyle = "#8e2a33";
    g.lineWidth = 1;
    g.stroke();
  }
  g.fillStyle = "#222";
  g.fillText("jawOpen", 4, 14);
  g.fillStyle = "#8e2a33";
  g.fillText("mouthPress", 56, 14);
}

function drawTimeline() {
  const g = timeline.getContext("2d");
  const { width, height } = timeline;
  g.clearRect(0, 0, width, height);
  if (!player || player.scheduledMs === 0) return;
  const scale = width / timelineSpanMs();
  g.font = "11px sans-serif";
  g.textBaseline = "middle";
  if (player.format === "arkit") drawCurves(g, scale, height);
  else drawMarks(g, scale, height);
  const playhead = player.audioTime() * scale;
  g.fillStyle = "#c00";
  g.fillRect(playhead - 1, 0, 2, height);
}

// For talk.js (same module instance): the key as typed, and who draws the face.
export const currentApiKey = () => apiKey;
export function setTalking(on) {
  talking = on;
  shownKey = ""; // redraw from this page's own state when talk.js lets go
  faceMarkup = "";
}

function frame() {
  if (talking) {
    requestAnimationFrame(frame);
    return;
  }
  if (player && player.format === "arkit") {
    // Held on the last frame when the audio ends or stalls, which is the speech's rest.
    showWeights(player.track, player.audioTime());
  } else {
    showViseme(player ? player.entryAt(player.audioTime()) : null, player ? player.format : "sapi");
  }
  drawTimeline();
  requestAnimationFrame(frame);
}

function newPlayer() {
  if (player) player.close();
  player = new Player($("format").value);
  return player;
}

// One SSE data object's lip sync: SAPI or Oculus visemes, or arkit blendshape frames.
function addLipsync(p, data) {
  if (data.blendshapes) p.track.add(data.blendshapes);
  if (!data.visemes) return;
  if (p.format !== "oculus") {
    p.addVisemes(data.visemes);
    return;
  }
  // Drawn as the SAPI viseme each Oculus name stands for; an unknown name as silence.
  p.addVisemes(data.visemes.map((v) => ({ ...v, visemeId: OCULUS[v.viseme]?.id ?? 0 })));
}

const received = (p) => (p.format === "arkit" ? `${p.track.length} blendshape frames` : `${p.visemes.length} visemes`);

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
  const response = await post("/v1/visemes-audio", { text, model, lipsync: { format: p.format } });
  let chunks = 0;
  await readEvents(response, (type, data) => {
    if (type === "error") throw new Error(data.message);
    if (data.type === "audio") {
      p.schedulePcm16(base64ToBytes(data.data), data.sample_rate);
      chunks += 1;
      status(`Playing: ${chunks} audio chunks received`);
    } else if (data.type === "visemes") {
      addLipsync(p, data);
    }
  });
  status(`Done: ${chunks} audio chunks and ${received(p)} received`);
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
  const response = await post("/v1/visemes", { audio: btoa(binary), lipsync: { format: p.format } });
  let started = false;
  await readEvents(response, (type, data) => {
    if (type === "error") throw new Error(data.message);
    addLipsync(p, data);
    if (!started) { // play once the first visemes are in: the rest arrive faster than real time
      started = true;
      p.schedule(audio.getChannelData(0), audio.sampleRate);
      status("Playing");
    }
  });
  status(`Done: ${received(p)}`);
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

showViseme(null, "sapi");
requestAnimationFrame(frame);
