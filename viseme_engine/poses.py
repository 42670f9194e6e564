# ruff: noqa: RUF002, RUF003  (IPA letters in comments are the subject of this module)
"""ARKit blendshape poses for the 22 SAPI visemes: the one table that decides
how far each shape moves for each mouth shape.

`ARKIT_NAMES` is ARKit's `ARFaceAnchor.BlendShapeLocation` order, the order
Azure's blend-shape visemes and Unreal's `EARFaceBlendShape` use (jawOpen is
index 17, tongueOut 51). `POSES[v]` is viseme v's target: weights 0-1, only
mouth, jaw and tongue shapes (eyes, brows, cheeks and nose stay 0: speech
does not move them and an avatar's own idle animation owns them).

Conventions the table follows (docs/lipsync.md has the reasoning per row):
- jawOpen carries vowel height: ɑ 0.7 > æ/ə 0.45 > ɛ 0.3 > i 0.12 > p 0.05;
- mouthFunnel/mouthPucker carry rounding (u w, o, ɔ, and the lip-rounded
  ʃ and ɹ), mouthStretch/mouthSmile carry spreading (i, s);
- mouthLowerDown/mouthUpperUp part the lips beyond what the jaw does, so
  teeth show on s and ʃ with the jaw nearly closed;
- ARKit's mouthClose closes the lips *independently of the jaw*: it is
  meant to be used with jawOpen, and more mouthClose than jawOpen pushes the
  lips into each other. p/b/m gets mouthClose a little above its jawOpen, so
  the lips stay sealed while the jaw settles, and mouthPress for the visible
  compression.

Pure numpy, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from .phonemes import NUM_VISEMES

ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)  # fmt: skip
ARKIT_INDEX: Mapping[str, int] = {name: i for i, name in enumerate(ARKIT_NAMES)}

# Shapes that open the mouth: `intensity` scales these. mouthClose is among
# them because it is defined relative to the jaw opening (see above); scaling
# it with jawOpen keeps a closure sealed at any intensity.
OPENING: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
)  # fmt: skip

# Per viseme, the shapes that move. A name without Left/Right that ARKit has
# as a pair (mouthSmile) sets both sides: speech is symmetric.
_POSES: Mapping[int, Mapping[str, float]] = {
    # rest: ARKit's neutral face has the lips together and the jaw closed
    0: {},
    # æ ə ʌ: open-mid, slightly spread
    1: {"jawOpen": 0.45, "mouthLowerDown": 0.25, "mouthUpperUp": 0.1, "mouthStretch": 0.15},
    # ɑ: the most open vowel, lips neutral
    2: {"jawOpen": 0.7, "mouthLowerDown": 0.3, "mouthUpperUp": 0.15},
    # ɔ: open-mid back rounded: open jaw inside a funnel
    3: {"jawOpen": 0.45, "mouthFunnel": 0.55, "mouthPucker": 0.25, "mouthLowerDown": 0.15},
    # ɛ ʊ (eh, ey, uh): mid, lips relaxed to slightly spread
    4: {"jawOpen": 0.3, "mouthLowerDown": 0.2, "mouthStretch": 0.2, "mouthUpperUp": 0.05},
    # ɝ: r-coloured mid vowel, lips slightly protruded as for ɹ
    5: {"jawOpen": 0.2, "mouthFunnel": 0.35, "mouthPucker": 0.3, "mouthLowerDown": 0.1},
    # j i ɪ: close front spread: teeth show between spread lips
    6: {"jawOpen": 0.12, "mouthStretch": 0.4, "mouthSmile": 0.25, "mouthLowerDown": 0.15,
        "mouthUpperUp": 0.1},
    # w u: close back, lips rounded and pushed forward
    7: {"jawOpen": 0.1, "mouthPucker": 0.8, "mouthFunnel": 0.45},
    # o: close-mid rounded: a wider funnel than u, less pucker
    8: {"jawOpen": 0.35, "mouthFunnel": 0.6, "mouthPucker": 0.4, "mouthLowerDown": 0.1},
    # aʊ: one viseme for the glide: the open onset dominates, rounding shows
    9: {"jawOpen": 0.6, "mouthLowerDown": 0.25, "mouthFunnel": 0.25, "mouthPucker": 0.1},
    # ɔɪ: rounded onset gliding to spread
    10: {"jawOpen": 0.4, "mouthFunnel": 0.45, "mouthPucker": 0.2, "mouthStretch": 0.1},
    # aɪ: open onset gliding to spread
    11: {"jawOpen": 0.6, "mouthLowerDown": 0.25, "mouthStretch": 0.2, "mouthUpperUp": 0.1},
    # h: the mouth of the neighbouring vowel; alone a neutral half-open mouth
    # (phonemes.py gives it Oculus E for the same reason)
    12: {"jawOpen": 0.25, "mouthLowerDown": 0.1},
    # ɹ: English r is lip-rounded; jaw nearly closed
    13: {"jawOpen": 0.15, "mouthPucker": 0.35, "mouthFunnel": 0.3},
    # l: tongue tip up behind the teeth, jaw open enough to show it
    14: {"jawOpen": 0.3, "mouthLowerDown": 0.15, "mouthStretch": 0.05},
    # s z: teeth nearly together, lips parted and spread to show them
    15: {"jawOpen": 0.05, "mouthStretch": 0.3, "mouthSmile": 0.1, "mouthUpperUp": 0.15,
         "mouthLowerDown": 0.2},
    # ʃ tʃ dʒ ʒ: teeth close, lips flared forward, teeth visible in the funnel
    16: {"jawOpen": 0.1, "mouthFunnel": 0.5, "mouthPucker": 0.3, "mouthUpperUp": 0.2,
         "mouthLowerDown": 0.2},
    # ð θ: tongue tip between the teeth
    17: {"jawOpen": 0.15, "tongueOut": 0.4, "mouthLowerDown": 0.1},
    # f v: lower lip tucked under the upper teeth, upper lip lifted off them
    18: {"jawOpen": 0.05, "mouthRollLower": 0.6, "mouthUpperUp": 0.3},
    # d t n: tongue tip on the ridge, jaw slightly open, lips neutral
    19: {"jawOpen": 0.2, "mouthLowerDown": 0.1, "mouthStretch": 0.1},
    # k g ŋ: back of the tongue raised, jaw a little more open than for t
    20: {"jawOpen": 0.25, "mouthLowerDown": 0.1, "mouthStretch": 0.05},
    # p b m: lips sealed and pressed, jaw nearly closed
    21: {"jawOpen": 0.05, "mouthClose": 0.15, "mouthPress": 0.55, "mouthRollLower": 0.25,
         "mouthRollUpper": 0.2},
}  # fmt: skip


def _row(pose: Mapping[str, float]) -> list[float]:
    row = [0.0] * len(ARKIT_NAMES)
    for name, weight in pose.items():
        names = [name] if name in ARKIT_INDEX else [name + "Left", name + "Right"]
        for n in names:
            row[ARKIT_INDEX[n]] = weight  # KeyError: a misspelt shape fails at import
    return row


POSES: npt.NDArray[np.float64] = np.array([_row(_POSES[v]) for v in range(NUM_VISEMES)])
POSES.flags.writeable = False
# Weights in thousandths, exact in float64: lipsync.py blends with them.
POSES_PERMILLE: npt.NDArray[np.float64] = np.rint(POSES * 1000)
POSES_PERMILLE.flags.writeable = False
assert np.array_equal(POSES_PERMILLE / 1000, POSES), "pose weights have at most 3 decimals"
assert POSES.min() >= 0.0
assert POSES.max() <= 1.0
