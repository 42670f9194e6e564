// viseme-gateway-client: visemes from the official JS SDKs in app code, one event shape
// whatever the provider, and a lip-sync player on the audio clock.
export { attachOpenAI } from "./openai.js";
export { visemeCallbacks } from "./genai.js";
export { startConversation } from "./elevenlabs.js";
export { LipsyncPlayer } from "./lipsync-player.js";
export { MouthTimeline, nearestViseme, namedWeights, poseWeights, REST } from "./mouth.js";
export { microphone } from "./microphone.js";
export {
  visemeEvent, base64ToBytes, bytesToBase64, pcm16ToFloat, mulawToFloat, floatToPcm16,
} from "./events.js";
export { ARKIT_NAMES, OCULUS_NAMES, OCULUS_TO_SAPI, POSES, SAPI_TO_OCULUS } from "./tables.js";
