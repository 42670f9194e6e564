// Type declarations for viseme-gateway-client (the modules are plain ES modules).

export type Provider = "elevenlabs" | "openai" | "gemini";
export type LipsyncFormat = "sapi" | "oculus" | "arkit";

/** A SAPI entry ({visemeId}) or, with lipsync.format oculus, an Oculus one ({viseme}). */
export interface VisemeEntry {
  visemeId?: number;
  viseme?: string;
  /** ms from the start of the audio message; negative: began in earlier audio */
  offset: number;
}

/** lipsync.format arkit: 52 weights per frame; frame j at offset + j * 1000 / fps ms. */
export interface BlendshapeBlock {
  fps: number;
  offset: number;
  names: string[];
  frames: number[][];
}

/** The one event shape, whatever the provider. */
export interface VisemeEvent {
  provider: Provider;
  format: LipsyncFormat;
  /** The audio message these belong to (ElevenLabs' event_id; OpenAI's and Gemini's count). */
  audioEventId: number | string;
  visemes: VisemeEntry[] | null;
  blendshapes: BlendshapeBlock | null;
  audioDurationMs: number | null;
  /** The response's last visemes, for an audio message that came before. */
  final: boolean;
}

/** The mouth at one moment of the audio clock. */
export interface MouthState {
  /** AudioContext seconds of what the listener hears now */
  time: number;
  playing: boolean;
  audioEventId: number | string | null;
  /** how far into message audioEventId `time` is, in ms */
  audioMs: number | null;
  /** SAPI 0-21 (arkit: the viseme whose pose is nearest to the weights) */
  visemeId: number;
  /** Oculus name */
  oculus: string;
  /** 52 ARKit weights in ARKIT_NAMES order (sapi/oculus: the poses, cross-faded) */
  weights: Float32Array;
}

export interface PlayerOptions {
  audioContext?: AudioContext;
  output?: AudioNode;
  /** how far ahead a fresh run of audio starts (100 ms) */
  leadMs?: number;
  /** sapi/oculus: the cross-fade between two poses (60 ms) */
  blendMs?: number;
}

export class LipsyncPlayer {
  constructor(options?: PlayerOptions);
  readonly ctx: AudioContext;
  /** AudioContext times of each interrupt() */
  readonly interruptions: number[];
  heardTime(): number;
  play(
    audioEventId: number | string,
    audio: Float32Array | Uint8Array | string,
    sampleRate: number,
    encoding?: "pcm16" | "mulaw",
  ): void;
  follow(audioEventId: number | string, durationMs: number): void;
  addVisemes(event: VisemeEvent): boolean;
  interrupt(): void;
  state(time?: number): MouthState;
  onFrame(listener: (state: MouthState) => void): () => void;
  close(): Promise<void>;
}

export interface KitOptions {
  player?: LipsyncPlayer;
  onVisemes?: (event: VisemeEvent, raw: unknown) => void;
  onInterrupt?: (raw: unknown) => void;
}

/** Anything with on/off of "event", as openai's OpenAIRealtimeWebSocket and OpenAIRealtimeWS. */
export interface RealtimeEmitter {
  on(event: "event", listener: (event: any) => void): unknown;
  off(event: "event", listener: (event: any) => void): unknown;
}
export function attachOpenAI(rt: RealtimeEmitter, options?: KitOptions): () => void;

export interface LiveCallbacks {
  onopen?: () => void;
  onmessage?: (message: any) => void;
  onerror?: (event: any) => void;
  onclose?: (event: any) => void;
}
export function visemeCallbacks<C extends LiveCallbacks>(
  callbacks?: C,
  options?: KitOptions,
): C & { onmessage: (message: any) => void };

export interface ElevenLabsKitOptions extends KitOptions {
  /** "kit" (default): the SDK muted, its audio played on the player; "sdk": followed */
  playback?: "kit" | "sdk";
}
export function startConversation<T>(
  Conversation: { startSession(options: any): Promise<T> },
  options: Record<string, unknown>,
  kit?: ElevenLabsKitOptions,
): Promise<T>;

export function microphone(options: {
  sampleRate?: number;
  onAudio: (base64Pcm16: string) => void;
}): Promise<{ sampleRate: number; stop(): Promise<void> }>;

export function visemeEvent(object: unknown, provider: Provider): VisemeEvent | null;

export class MouthTimeline {
  constructor(options?: { blendMs?: number });
  addEntry(at: number, entry: VisemeEntry): void;
  addBlendshapes(start: number, block: BlendshapeBlock): void;
  clear(): void;
  prune(time: number): void;
  stateAt(time: number): { visemeId: number; oculus: string; weights: Float32Array };
}
export const REST: { visemeId: 0; oculus: "sil"; weights: Float32Array };
export function poseWeights(visemeId: number): Float32Array;
export function nearestViseme(weights: ArrayLike<number>): number;
export function namedWeights(weights: ArrayLike<number>): Record<string, number>;

export function base64ToBytes(b64: string): Uint8Array;
export function bytesToBase64(bytes: Uint8Array): string;
export function pcm16ToFloat(data: Uint8Array | string): Float32Array;
export function mulawToFloat(data: Uint8Array | string): Float32Array;
export function floatToPcm16(samples: Float32Array): Uint8Array;

export const ARKIT_NAMES: readonly string[];
export const OCULUS_NAMES: readonly string[];
export const SAPI_TO_OCULUS: readonly string[];
export const OCULUS_TO_SAPI: Readonly<Record<string, number>>;
export const POSES: readonly Readonly<Record<string, number>>[];
