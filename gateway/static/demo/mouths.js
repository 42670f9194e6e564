// The 22 SAPI/Azure visemes as SVG mouth drawings: lips, opening, teeth, tongue.
// Each drawing is built from a few shape parameters, so all 22 differ and stay readable.

export const PHONEMES = [
  "silence", "æ ə ʌ", "ɑ", "ɔ", "ɛ ʊ", "ɝ", "j i ɪ", "w u", "o", "aʊ", "ɔɪ",
  "aɪ", "h", "ɹ", "l", "s z", "ʃ tʃ dʒ ʒ", "θ ð", "f v", "d t n", "k g ŋ", "p b m",
];

// w: half width of the opening, open: half height, round: 0 lens .. 1 circle,
// lip: lip thickness, teeth: "u" upper, "l" lower, tongue: low | tip | back | out.
const SHAPES = [
  { w: 40, open: 0, lip: 7, seam: "relaxed" },                              // 0 silence
  { w: 40, open: 13, round: 0.2, lip: 7, teeth: "u", tongue: "low" },       // 1 æ ə ʌ
  { w: 38, open: 27, round: 0.35, lip: 6, teeth: "u", tongue: "low" },      // 2 ɑ
  { w: 27, open: 22, round: 0.8, lip: 8, tongue: "low" },                   // 3 ɔ
  { w: 44, open: 11, round: 0.15, lip: 7, teeth: "ul", tongue: "low" },     // 4 ɛ ʊ
  { w: 27, open: 10, round: 0.6, lip: 9, teeth: "u", tongue: "back" },      // 5 ɝ
  { w: 52, open: 6, round: 0, lip: 5, teeth: "ul" },                        // 6 j i ɪ
  { w: 10, open: 9, round: 1, lip: 12 },                                    // 7 w u
  { w: 19, open: 17, round: 1, lip: 10, tongue: "low" },                    // 8 o
  { w: 34, open: 30, round: 0.55, lip: 7, teeth: "l", tongue: "low" },     // 9 aʊ
  { w: 24, open: 16, round: 0.9, lip: 9, teeth: "u", tongue: "low" },       // 10 ɔɪ
  { w: 46, open: 22, round: 0.25, lip: 6, teeth: "ul", tongue: "low" },     // 11 aɪ
  { w: 36, open: 17, round: 0.3, lip: 7, tongue: "back" },                  // 12 h
  { w: 23, open: 12, round: 0.7, lip: 10, tongue: "tip" },                  // 13 ɹ
  { w: 40, open: 17, round: 0.2, lip: 7, teeth: "u", tongue: "tip" },       // 14 l
  { w: 46, open: 4, round: 0, lip: 6, teeth: "ul" },                        // 15 s z
  { w: 25, open: 10, round: 0.6, lip: 11, teeth: "ul" },                    // 16 ʃ tʃ dʒ ʒ
  { w: 40, open: 8, round: 0.1, lip: 7, teeth: "ul", tongue: "out" },       // 17 θ ð
  { w: 40, open: 0, lip: 7, seam: "bite" },                                 // 18 f v
  { w: 42, open: 9, round: 0.1, lip: 7, teeth: "ul", tongue: "tip" },       // 19 d t n
  { w: 40, open: 14, round: 0.2, lip: 7, teeth: "l", tongue: "back" },      // 20 k g ŋ
  { w: 36, open: 0, lip: 9, seam: "pressed" },                              // 21 p b m
];

const CX = 100;
const CY = 150;
const K = 0.5523; // cubic Bézier handle for a quarter ellipse

// A closed contour: a lens (pointed corners) at round 0, an ellipse at round 1.
function contour(rx, top, bottom, round) {
  const f = (n) => n.toFixed(1);
  const corner = (ry) => ry * K * round;
  return [
    `M${f(CX - rx)},${CY}`,
    `C${f(CX - rx)},${f(CY - corner(top))} ${f(CX - rx * K)},${f(CY - top)} ${CX},${f(CY - top)}`,
    `C${f(CX + rx * K)},${f(CY - top)} ${f(CX + rx)},${f(CY - corner(top))} ${f(CX + rx)},${CY}`,
    `C${f(CX + rx)},${f(CY + corner(bottom))} ${f(CX + rx * K)},${f(CY + bottom)} ${CX},${f(CY + bottom)}`,
    `C${f(CX - rx * K)},${f(CY + bottom)} ${f(CX - rx)},${f(CY + corner(bottom))} ${f(CX - rx)},${CY}Z`,
  ].join(" ");
}

function teeth(s) {
  const out = [];
  const width = s.w * 1.5;
  const x = CX - width / 2;
  const gaps = (y, h) => [-0.25, 0, 0.25]
    .map((k) => `<line class="gap" x1="${CX + k * width}" y1="${y}" x2="${CX + k * width}" y2="${y + h}"/>`)
    .join("");
  if (s.teeth.includes("u")) {
    const h = Math.max(3, Math.min(8, s.open * 0.75));
    out.push(`<rect class="teeth" x="${x}" y="${CY - s.open - 1}" width="${width}" height="${h + 1}" rx="2"/>`, gaps(CY - s.open, h));
  }
  if (s.teeth.includes("l")) {
    const h = Math.max(3, Math.min(6, s.open * 0.6));
    out.push(`<rect class="teeth" x="${x + 3}" y="${CY + s.open - h}" width="${width - 6}" height="${h + 1}" rx="2"/>`, gaps(CY + s.open - h, h));
  }
  return out.join("");
}

function tongue(s) {
  const e = (cx, cy, rx, ry) => `<ellipse class="tongue" cx="${cx}" cy="${cy}" rx="${rx}" ry="${ry}"/>`;
  switch (s.tongue) {
    case "low": return e(CX, CY + s.open * 0.85, s.w * 0.6, s.open * 0.45);
    case "back": return e(CX, CY + s.open * 0.35, s.w * 0.75, s.open * 0.7);
    case "tip": return e(CX, CY + s.open * 0.7, s.w * 0.55, s.open * 0.4) + e(CX, CY - s.open * 0.35, s.w * 0.18, s.open * 0.55);
    case "out": return e(CX, CY + 1, s.w * 0.42, 5);
    default: return "";
  }
}

function closed(s) {
  const lips = `<path class="lips" d="${contour(s.w + 8, s.lip + 2, s.lip + 5, 0.3)}"/>`;
  if (s.seam === "pressed") {
    // Lips pressed together: flattened, a straight hard seam and bulging corners.
    return `<path class="lips" d="${contour(s.w + 8, s.lip, s.lip + 1, 0.15)}"/>` +
      `<line class="seam hard" x1="${CX - s.w - 6}" y1="${CY}" x2="${CX + s.w + 6}" y2="${CY}"/>` +
      `<circle class="seam" cx="${CX - s.w - 7}" cy="${CY}" r="2"/><circle class="seam" cx="${CX + s.w + 7}" cy="${CY}" r="2"/>`;
  }
  if (s.seam === "bite") {
    // Lower lip drawn in under the upper teeth.
    const x = (k) => (CX + k * s.w).toFixed(1);
    return `<path class="lips" d="${contour(s.w + 8, s.lip + 4, 2, 0.3)}"/>` +
      `<rect class="teeth" x="${x(-0.7)}" y="${CY}" width="${(s.w * 1.4).toFixed(1)}" height="8" rx="2"/>` +
      `<line class="gap" x1="${CX}" y1="${CY}" x2="${CX}" y2="${CY + 8}"/>` +
      `<path class="lips" d="M${x(-1)},${CY + 5} Q${CX},${CY + 32} ${x(1)},${CY + 5} Q${CX},${CY + 11} ${x(-1)},${CY + 5}Z"/>`;
  }
  return lips + `<path class="seam" d="M${CX - s.w - 6},${CY} Q${CX},${CY + 3} ${CX + s.w + 6},${CY}"/>`;
}

// The SVG markup of one viseme's mouth (children of the mouth <g>).
export function mouthSvg(id) {
  const s = { round: 0, teeth: "", tongue: "", ...SHAPES[id] };
  if (!s.open) return closed(s);
  const round = s.round;
  const inner = contour(s.w, s.open, s.open, round);
  const clip = `<clipPath id="mouth-inside"><path d="${inner}"/></clipPath>`;
  return clip +
    `<path class="lips" d="${contour(s.w + s.lip, s.open + s.lip, s.open + s.lip + 3, Math.max(round, 0.3))}"/>` +
    `<path class="inside" d="${inner}"/>` +
    `<g clip-path="url(#mouth-inside)">${s.tongue === "out" ? teeth(s) + tongue(s) : tongue(s) + teeth(s)}</g>`;
}

export const VISEME_COUNT = SHAPES.length;

// The 15 Oculus visemes, each drawn as the SAPI viseme it stands for (the one the
// gateway's SAPI -> Oculus table maps to it, the most typical where several do).
export const OCULUS = {
  sil: { id: 0, phonemes: "silence" },
  PP: { id: 21, phonemes: "p b m" },
  FF: { id: 18, phonemes: "f v" },
  TH: { id: 17, phonemes: "θ ð" },
  DD: { id: 19, phonemes: "d t n" },
  kk: { id: 20, phonemes: "k g ŋ" },
  CH: { id: 16, phonemes: "ʃ tʃ dʒ ʒ" },
  SS: { id: 15, phonemes: "s z" },
  nn: { id: 14, phonemes: "l" },
  RR: { id: 13, phonemes: "ɹ ɝ" },
  aa: { id: 2, phonemes: "ɑ æ ə ʌ aɪ aʊ" },
  E: { id: 4, phonemes: "ɛ ʊ h" },
  ih: { id: 6, phonemes: "j i ɪ" },
  oh: { id: 8, phonemes: "o ɔ ɔɪ" },
  ou: { id: 7, phonemes: "w u" },
};
