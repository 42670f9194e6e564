// The viseme tables, copied from the gateway's own (viseme_engine/phonemes.py and
// viseme_engine/poses.py are the source of truth; tests/test_client_js.py checks these
// equal them). Plain data, no DOM.

/** The 15 Oculus/OpenXR viseme names, in Oculus' order. */
export const OCULUS_NAMES = Object.freeze([
  "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
]);

/** SAPI id (0-21) -> Oculus name. */
export const SAPI_TO_OCULUS = Object.freeze([
  "sil", "aa", "aa", "oh", "E", "RR", "ih", "ou", "oh", "aa", "oh",
  "aa", "E", "RR", "nn", "SS", "CH", "TH", "FF", "DD", "kk", "PP",
]);

/** Oculus name -> the SAPI id whose mouth stands for it (its most typical member). */
export const OCULUS_TO_SAPI = Object.freeze({
  sil: 0, PP: 21, FF: 18, TH: 17, DD: 19, kk: 20, CH: 16, SS: 15,
  nn: 14, RR: 13, aa: 2, E: 4, ih: 6, oh: 8, ou: 7,
});

/** ARKit's 52 blendshape names in Apple's order (the order of every weights array). */
export const ARKIT_NAMES = Object.freeze([
  "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
  "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
  "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
  "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
  "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
  "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
  "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
  "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
  "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
  "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
  "noseSneerRight", "tongueOut",
]);

// Per SAPI id, the shapes that move, as viseme_engine/poses.py writes them: a name ARKit
// has as a Left/Right pair (mouthSmile) sets both sides.
const SPARSE = [
  {}, // 0
  { jawOpen: 0.45, mouthLowerDown: 0.25, mouthUpperUp: 0.1, mouthStretch: 0.15 }, // 1
  { jawOpen: 0.7, mouthLowerDown: 0.3, mouthUpperUp: 0.15 }, // 2
  { jawOpen: 0.45, mouthFunnel: 0.55, mouthPucker: 0.25, mouthLowerDown: 0.15 }, // 3
  { jawOpen: 0.3, mouthLowerDown: 0.2, mouthStretch: 0.2, mouthUpperUp: 0.05 }, // 4
  { jawOpen: 0.2, mouthFunnel: 0.35, mouthPucker: 0.3, mouthLowerDown: 0.1 }, // 5
  { // 6
    jawOpen: 0.12, mouthStretch: 0.4, mouthSmile: 0.25,
    mouthLowerDown: 0.15, mouthUpperUp: 0.1,
  },
  { jawOpen: 0.1, mouthPucker: 0.8, mouthFunnel: 0.45 }, // 7
  { jawOpen: 0.35, mouthFunnel: 0.6, mouthPucker: 0.4, mouthLowerDown: 0.1 }, // 8
  { jawOpen: 0.6, mouthLowerDown: 0.25, mouthFunnel: 0.25, mouthPucker: 0.1 }, // 9
  { jawOpen: 0.4, mouthFunnel: 0.45, mouthPucker: 0.2, mouthStretch: 0.1 }, // 10
  { jawOpen: 0.6, mouthLowerDown: 0.25, mouthStretch: 0.2, mouthUpperUp: 0.1 }, // 11
  { jawOpen: 0.25, mouthLowerDown: 0.1 }, // 12
  { jawOpen: 0.15, mouthPucker: 0.35, mouthFunnel: 0.3 }, // 13
  { jawOpen: 0.3, mouthLowerDown: 0.15, mouthStretch: 0.05 }, // 14
  { // 15
    jawOpen: 0.05, mouthStretch: 0.3, mouthSmile: 0.1,
    mouthUpperUp: 0.15, mouthLowerDown: 0.2,
  },
  { // 16
    jawOpen: 0.1, mouthFunnel: 0.5, mouthPucker: 0.3,
    mouthUpperUp: 0.2, mouthLowerDown: 0.2,
  },
  { jawOpen: 0.15, tongueOut: 0.4, mouthLowerDown: 0.1 }, // 17
  { jawOpen: 0.05, mouthRollLower: 0.6, mouthUpperUp: 0.3 }, // 18
  { jawOpen: 0.2, mouthLowerDown: 0.1, mouthStretch: 0.1 }, // 19
  { jawOpen: 0.25, mouthLowerDown: 0.1, mouthStretch: 0.05 }, // 20
  { // 21
    jawOpen: 0.05, mouthClose: 0.15, mouthPress: 0.55,
    mouthRollLower: 0.25, mouthRollUpper: 0.2,
  },
];

const expand = (pose) => {
  const out = {};
  for (const [name, weight] of Object.entries(pose)) {
    if (ARKIT_NAMES.includes(name)) out[name] = weight;
    else for (const side of ["Left", "Right"]) out[name + side] = weight;
  }
  return Object.freeze(out);
};

/** Per SAPI id, the ARKit pose: {name: weight} for the shapes that move (others 0). */
export const POSES = Object.freeze(SPARSE.map(expand));
