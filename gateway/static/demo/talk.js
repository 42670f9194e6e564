// Talk to an agent: a provider's official JS SDK (bundled from npm by ./dev.sh, served as
// /demo/sdk-*.js), through this gateway, with the JS client kit (clients/js, served as
// /demo/index.js and its modules) playing the agent's voice and moving the face on the
// audio clock. window.visemeTalk is a read-only view for tests.
import { currentApiKey, setTalking } from "./demo.js";
import { faceSvg, headPath } from "./face.js";
import { mouthSvg, PHONEMES } from "./mouths.js";

const $ = (id) => document.getElementById(id);
const say = (text) => { $("talk-status").textContent = text; };
const SDKS = { elevenlabs: "sdk-elevenlabs.js", openai: "sdk-openai.js", gemini: "sdk-genai.js" };
const NAMES = { elevenlabs: "@elevenlabs/client", openai: "openai", gemini: "@google/genai" };
const servedUrl = (name) => new URL(`./${name}`, import.meta.url).href;

let kit = null;
let call = null; // {provider, player, hangUp}
let frames = 0;
let events = 0; // viseme events received in this call
const credentials = new Map(); // provider -> the credential pasted last (page memory only)
const history = []; // [time, visemeId] per animation frame, the last few seconds
const HISTORY_S = 2;

window.visemeTalk = Object.freeze({
  get ready() { return kit !== null; },
  get player() { return call ? call.player : null; },
  get provider() { return call ? call.provider : null; },
  get state() { return call ? call.player.state() : null; },
  get frames() { return frames; },
  get events() { return events; },
  get status() { return $("talk-status").textContent; },
});

// The timeline: what the face showed over the last seconds, now at the right edge.
function drawHistory(state) {
  if (state.playing) history.push([state.time, state.visemeId]);
  while (history.length && history[0][0] < state.time - HISTORY_S) history.shift();
  const canvas = $("timeline");
  const g = canvas.getContext("2d");
  const x = (t) => canvas.width * (1 - (state.time - t) / HISTORY_S);
  g.clearRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < history.length; i++) {
    const [t, id] = history[i];
    const end = i + 1 < history.length ? history[i + 1][0] : state.time;
    if (end - t > 0.1) continue; // a pause in the audio
    g.fillStyle = id === 0 ? "#e6e6e6" : `hsl(${(id * 47) % 360} 65% 70%)`;
    g.fillRect(x(t), 8, Math.max(x(end) - x(t), 1), canvas.height - 16);
  }
  g.fillStyle = "#c00";
  g.fillRect(canvas.width - 2, 0, 2, canvas.height);
}

function draw(state, format) {
  frames += 1;
  drawHistory(state);
  const mouth = $("mouth");
  if (format === "arkit") {
    const weights = kit.namedWeights(state.weights);
    mouth.innerHTML = faceSvg(weights);
    $("head").setAttribute("d", headPath(weights.jawOpen));
    $("viseme-label").textContent = `jawOpen ${weights.jawOpen.toFixed(2)}`;
    delete mouth.dataset.viseme;
    return;
  }
  const id = state.visemeId;
  if (mouth.dataset.viseme === String(id)) return;
  mouth.innerHTML = mouthSvg(id);
  mouth.dataset.viseme = String(id);
  $("head").setAttribute("d", headPath(0));
  $("viseme-label").textContent = format === "oculus" ? `${state.oculus} · ${PHONEMES[id]}` : `${id} · ${PHONEMES[id]}`;
}

function counted() {
  events += 1;
  if (call && call.connected) say(`Talking to ${call.provider}: ${events} viseme events so far`);
}

async function postJson(url, body, headers) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${url}: ${response.status} ${data.error || response.statusText}`);
  return data;
}

// The gateway's get-signed-url answer: from your backend, or signed here with the API key.
async function signed(provider, providerConfig, lipsync) {
  const backend = $("talk-backend").value.trim();
  if (backend) return postJson(backend, { provider, lipsync }, {});
  const key = currentApiKey();
  if (!key) throw new Error("Enter an API key above (or a backend URL) first");
  const config = { provider, provider_config: { ...providerConfig, lipsync } };
  return postJson("/v1/get-signed-url", { config }, { Authorization: `Bearer ${key}` });
}

async function sdk(provider) {
  try {
    return await import(servedUrl(SDKS[provider]));
  } catch {
    throw new Error(`${NAMES[provider]} is not bundled: ./dev.sh serve installs it with npm`);
  }
}

const START = {
  async elevenlabs(player, secret, format) {
    const { Conversation } = await sdk("elevenlabs");
    const config = { agent_id: $("talk-agent").value.trim(), ...(secret ? { api_key: secret } : {}) };
    const answer = await signed("elevenlabs", config, { format });
    const options = {
      signedUrl: answer.signed_url,
      connectionType: "websocket",
      // Self-hosted worklets: this page's CSP allows scripts from this origin only.
      workletPaths: {
        rawAudioProcessor: servedUrl("sdk-rawAudioProcessor.js"),
        audioConcatProcessor: servedUrl("sdk-audioConcatProcessor.js"),
      },
      onDisconnect: () => say("Disconnected"),
      onError: (message) => say(`Error: ${message}`),
    };
    const conversation = await kit.startConversation(Conversation, options, { player, onVisemes: counted });
    return () => conversation.endSession();
  },

  async openai(player, secret, format) {
    const { OpenAI, OpenAIRealtimeWebSocket } = await sdk("openai");
    const answer = await signed("openai", { ephemeral_token: secret }, { format });
    // The real token travels inside the signed URL; the SDK only needs an ek_ key to agree
    // to run in a browser.
    const client = new OpenAI({ apiKey: "ek_signed_by_the_gateway", dangerouslyAllowBrowser: true });
    const url = new URL(answer.signed_url);
    const rt = new OpenAIRealtimeWebSocket({ model: "gpt-realtime", buildRealtimeURL: () => url }, client);
    rt.on("error", (error) => say(`Error: ${error.message}`));
    kit.attachOpenAI(rt, { player, onVisemes: counted });
    await new Promise((resolve, reject) => {
      rt.socket.addEventListener("open", resolve, { once: true });
      rt.socket.addEventListener("close", () => reject(new Error("the relay closed")), { once: true });
    });
    const send = (audio) => { if (rt.socket.readyState === 1) rt.send({ type: "input_audio_buffer.append", audio }); };
    const mic = await kit.microphone({ sampleRate: 24000, onAudio: send });
    return async () => { await mic.stop(); rt.close(); };
  },

  async gemini(player, secret, format) {
    const { GoogleGenAI, Modality } = await sdk("gemini");
    const credential = secret.startsWith("auth_tokens/") ? { ephemeral_token: secret } : { api_key: secret };
    const answer = await signed("gemini", credential, { format });
    const ai = new GoogleGenAI({ apiKey: answer.api_key, httpOptions: { baseUrl: answer.base_url } });
    const session = await ai.live.connect({
      model: "gemini-live-2.5-flash-preview",
      config: { responseModalities: [Modality.AUDIO] },
      callbacks: kit.visemeCallbacks({ onerror: (e) => say(`Error: ${e.message}`) }, { player, onVisemes: counted }),
    });
    const send = (data) => session.sendRealtimeInput({ audio: { data, mimeType: "audio/pcm;rate=16000" } });
    const mic = await kit.microphone({ sampleRate: 16000, onAudio: send });
    return async () => { await mic.stop(); session.close(); };
  },
};

async function hangUp() {
  const current = call;
  call = null;
  $("talk-stop").disabled = true;
  $("talk-start").disabled = false;
  setTalking(false);
  if (!current) return;
  await current.hangUp?.();
  await current.player.close();
}

async function talk(event) {
  event.preventDefault();
  await hangUp();
  const provider = $("talk-provider").value;
  const format = $("format").value;
  // Page memory only: the field is cleared, the credential kept here for the next call.
  const typed = $("talk-secret").value.trim();
  $("talk-secret").value = "";
  if (typed) credentials.set(provider, typed);
  const secret = credentials.get(provider) ?? "";
  const player = new kit.LipsyncPlayer();
  call = { provider, player, hangUp: null, connected: false };
  events = 0;
  history.length = 0;
  $("talk-start").disabled = true;
  $("talk-stop").disabled = false;
  setTalking(true);
  player.onFrame((state) => draw(state, format));
  say(`Connecting to ${provider}…`);
  try {
    const hang = await START[provider](player, secret, format);
    if (call?.player !== player) return hang(); // hung up meanwhile
    call.hangUp = hang;
    call.connected = true;
    say(`Talking to ${provider}: speak into the microphone`);
  } catch (error) {
    say(`Error: ${error.message}`);
    await hangUp();
  }
}

// Which SDK bundles this gateway serves: the others' options say they are missing.
async function probe() {
  const missing = [];
  for (const [provider, file] of Object.entries(SDKS)) {
    const response = await fetch(servedUrl(file), { method: "HEAD" }).catch(() => null);
    if (!response || !response.ok) {
      missing.push(NAMES[provider]);
      const option = $("talk-provider").querySelector(`option[value="${provider}"]`);
      option.disabled = true;
      option.textContent += " (SDK not bundled)";
    }
  }
  const select = $("talk-provider");
  if (select.selectedOptions[0]?.disabled) {
    const first = [...select.options].find((o) => !o.disabled);
    if (first) select.value = first.value;
  }
  return missing;
}

async function init() {
  $("talk-provider").addEventListener("change", () => {
    $("talk-agent-field").hidden = $("talk-provider").value !== "elevenlabs";
  });
  try {
    kit = await import("./index.js");
  } catch {
    $("talk-start").disabled = true;
    say("The JS client kit (clients/js) is not served here: run the gateway from a source checkout.");
    return;
  }
  const missing = await probe();
  $("talk-form").addEventListener("submit", talk);
  $("talk-stop").addEventListener("click", hangUp);
  if (missing.length === Object.keys(SDKS).length) $("talk-start").disabled = true;
  say(missing.length ? `Not bundled: ${missing.join(", ")} (./dev.sh serve installs them with npm).` : "Ready.");
}

init();
