// The mouth drawn from ARKit blendshape weights ({name: 0..1}), for the arkit format.
// Every coordinate is a continuous function of the weights, so a face computed from
// interpolated weights moves smoothly: no shape is picked from a table.

const CX = 100;
const CY = 142; // higher than the SAPI pictures' 150: the jaw opens downwards
const K = 0.5523; // cubic Bézier handle for a quarter ellipse
const JAW = 36; // px the lower teeth drop at jawOpen 1
const LIP = 44; // px the lower lip drops at jawOpen 1 (lips part a little more than the teeth)
const f = (n) => n.toFixed(1);
const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

// Speech is symmetric: a Left/Right pair is read as its mean.
function reader(w) {
  const one = (name) => w[name] || 0;
  return (name) => (`${name}Left` in w ? (one(`${name}Left`) + one(`${name}Right`)) / 2 : one(name));
}

// The mouth's geometry (px in the face's 200x200 viewBox) from the weights.
export function geometry(weights) {
  const w = reader(weights);
  const jaw = w("jawOpen");
  const press = w("mouthPress");
  const funnel = w("mouthFunnel");
  const pucker = w("mouthPucker");
  const stretch = w("mouthStretch");
  const smile = w("mouthSmile");
  const rollLower = w("mouthRollLower");
  const rollUpper = w("mouthRollUpper");
  // ARKit's mouthClose closes the lips independently of the jaw: only the jaw opening
  // beyond it parts them. Pressed lips stay together whatever else pulls them.
  const apart = Math.max(0, jaw - w("mouthClose"));
  const seal = 1 - press;
  const lowerDrop = (LIP * apart + 10 * w("mouthLowerDown") + 3 * funnel) * seal;
  const upperRaise = (8 * w("mouthUpperUp") + 3 * funnel) * seal;
  return {
    jaw,
    press,
    tongue: w("tongueOut"),
    round: clamp(0.1 + 1.1 * funnel + 0.9 * pucker, 0, 1),
    halfWidth: Math.max(10, 40 + 12 * stretch + 8 * smile - 24 * pucker - 10 * funnel - 4 * apart),
    top: CY - upperRaise, // the lips' inner edges
    bottom: CY + lowerDrop,
    corner: CY + 0.4 * lowerDrop - 5 * smile,
    upperLip: Math.max(2, 7 + 4 * pucker + 3 * funnel - 5 * rollUpper - 2 * press),
    lowerLip: Math.max(2, 9 + 4 * pucker + 3 * funnel - 7 * rollLower - 2 * press),
    bow: 2.5 * (1 - pucker), // the dip of the cupid's bow
    // f/v: the lower lip tucked under the upper teeth (not a p/b/m seal, which rolls both)
    bite: 6 * Math.max(0, rollLower - rollUpper - press),
    gap: lowerDrop + upperRaise,
  };
}

// How far apart the lips are, in px: about 0 when they touch.
export function lipGap(weights) {
  return geometry(weights).gap;
}

// The opening: lens-shaped at round 0, an ellipse at round 1; corners at `corner`.
function inner(g) {
  const l = CX - g.halfWidth;
  const r = CX + g.halfWidth;
  const up = (g.corner - g.top) * K * g.round;
  const down = (g.bottom - g.corner) * K * g.round;
  const hx = g.halfWidth * K;
  return [
    `M${f(l)},${f(g.corner)}`,
    `C${f(l)},${f(g.corner - up)} ${f(CX - hx)},${f(g.top)} ${CX},${f(g.top)}`,
    `C${f(CX + hx)},${f(g.top)} ${f(r)},${f(g.corner - up)} ${f(r)},${f(g.corner)}`,
    `C${f(r)},${f(g.corner + down)} ${f(CX + hx)},${f(g.bottom)} ${CX},${f(g.bottom)}`,
    `C${f(CX - hx)},${f(g.bottom)} ${f(l)},${f(g.corner + down)} ${f(l)},${f(g.corner)}Z`,
  ].join(" ");
}

// The lips' outline: the opening grown by the lip thickness, with a cupid's bow on top.
function outer(g) {
  const half = g.halfWidth + 6 + 2 * g.press;
  const l = CX - half;
  const r = CX + half;
  const top = g.top - g.upperLip;
  const bottom = g.bottom + g.lowerLip;
  const round = Math.max(g.round, 0.3);
  const up = (g.corner - top) * K * round;
  const down = (bottom - g.corner) * K * round;
  const peak = half * 0.3;
  return [
    `M${f(l)},${f(g.corner)}`,
    `C${f(l)},${f(g.corner - up)} ${f(CX - half * 0.6)},${f(top)} ${f(CX - peak)},${f(top)}`,
    `Q${f(CX - peak / 3)},${f(top)} ${CX},${f(top + g.bow)}`,
    `Q${f(CX + peak / 3)},${f(top)} ${f(CX + peak)},${f(top)}`,
    `C${f(CX + half * 0.6)},${f(top)} ${f(r)},${f(g.corner - up)} ${f(r)},${f(g.corner)}`,
    `C${f(r)},${f(g.corner + down)} ${f(CX + half * K)},${f(bottom)} ${CX},${f(bottom)}`,
    `C${f(CX - half * K)},${f(bottom)} ${f(l)},${f(g.corner + down)} ${f(l)},${f(g.corner)}Z`,
  ].join(" ");
}

function teeth(g) {
  // Upper teeth are fixed to the skull, lower teeth ride on the jaw; the opening shows them.
  const half = Math.min(g.halfWidth * 0.85, 34);
  const x = f(CX - half);
  const width = f(2 * half);
  const lowerTop = CY + 1 + JAW * g.jaw;
  const gaps = (y, h) => [-0.5, 0, 0.5]
    .map((k) => `<line class="gap" x1="${f(CX + k * half)}" y1="${f(y)}" x2="${f(CX + k * half)}" y2="${f(y + h)}"/>`)
    .join("");
  return `<rect class="teeth" x="${x}" y="${CY - 14}" width="${width}" height="18" rx="2"/>` + gaps(CY - 14, 18) +
    `<rect class="teeth" x="${f(CX - half + 3)}" y="${f(lowerTop)}" width="${f(2 * half - 6)}" height="8" rx="2"/>` +
    gaps(lowerTop, 8);
}

// The mouth's SVG markup (children of the face's mouth <g>).
export function faceSvg(weights) {
  const g = geometry(weights);
  const opening = inner(g);
  // Behind the teeth, riding on the jaw.
  const tongueIn = `<ellipse class="tongue" cx="${CX}" cy="${f(CY + 4 + JAW * g.jaw)}" rx="${f(g.halfWidth * 0.65)}" ry="7"/>`;
  const parts = [
    `<clipPath id="face-inside"><path d="${opening}"/></clipPath>`,
    `<path class="lips" d="${outer(g)}"/>`,
    `<path class="inside" d="${opening}"/>`,
    `<g clip-path="url(#face-inside)">${tongueIn}${teeth(g)}</g>`,
  ];
  if (g.bite > 0) { // the upper teeth's edge over the tucked-in lower lip
    const half = Math.min(g.halfWidth * 0.7, 28);
    parts.push(`<rect class="teeth" x="${f(CX - half)}" y="${CY}" width="${f(2 * half)}" height="${f(g.bite)}" rx="1.5"/>`);
  }
  if (g.tongue > 0) { // between the teeth, over the lower lip
    const rx = Math.min(g.halfWidth * 0.5, 16) * (0.5 + g.tongue);
    parts.push(`<ellipse class="tongue" cx="${CX}" cy="${f(CY + 0.5 * (g.bottom - CY) + 1 + 4 * g.tongue)}" rx="${f(rx)}" ry="${f(12 * g.tongue)}"/>`);
  }
  // The seam between touching lips fades in as they close and hardens as they press.
  const seam = clamp(1 - g.gap / 2, 0, 1);
  if (seam > 0) {
    const half = g.halfWidth + 4;
    parts.push(`<path class="seam" opacity="${seam.toFixed(2)}" stroke-width="${f(2.5 + 1.5 * g.press)}" ` +
      `d="M${f(CX - half)},${f(g.corner)} Q${CX},${f(CY + 2 * (1 - g.press))} ${f(CX + half)},${f(g.corner)}"/>`);
  }
  if (g.press > 0) { // dimples at the corners of pressed lips
    const r = f(2 * g.press);
    const x = g.halfWidth + 7 + 2 * g.press;
    parts.push(`<circle class="seam" cx="${f(CX - x)}" cy="${f(g.corner)}" r="${r}"/><circle class="seam" cx="${f(CX + x)}" cy="${f(g.corner)}" r="${r}"/>`);
  }
  return parts.join("");
}

// The head's outline: a circle whose lower half lengthens as the jaw opens.
export function headPath(jaw) {
  return `M8,100 A92,92 0 0 1 192,100 A92,${f(92 + 6 * jaw)} 0 0 1 8,100Z`;
}
