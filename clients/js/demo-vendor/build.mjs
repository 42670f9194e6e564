// Bundles the three official SDKs into dist/ as browser ES modules for /demo
// (gateway/routes_demo.py serves them at /demo/sdk-<name>.js), with the
// ElevenLabs worklets self-hosted (the page's CSP allows scripts from 'self' only)
// and dist/LICENSES.txt: every bundled package, its version and licence.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const entries = {
  elevenlabs: 'export { Conversation } from "@elevenlabs/client";',
  openai: 'export { OpenAI } from "openai";\nexport { OpenAIRealtimeWebSocket } from "openai/realtime/websocket";',
  genai: 'export { GoogleGenAI, Modality } from "@google/genai";',
};
mkdirSync("dist", { recursive: true });
const licences = new Map();
for (const [name, contents] of Object.entries(entries)) {
  const result = await build({
    stdin: { contents, resolveDir: ".", sourcefile: `${name}.js` },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "eof",
    metafile: true,
    outfile: `dist/sdk-${name}.js`,
    logLevel: "warning",
  });
  for (const input of Object.keys(result.metafile.inputs)) {
    const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (match) licences.set(match[1], name);
  }
}
for (const file of ["audioConcatProcessor.js", "rawAudioProcessor.js"]) {
  copyFileSync(join("node_modules/@elevenlabs/client/worklets", file), join("dist", `sdk-${file}`));
}
const lines = [...licences.keys()].sort().map((pkg) => {
  const meta = JSON.parse(readFileSync(join("node_modules", pkg, "package.json"), "utf8"));
  const files = readdirSync(join("node_modules", pkg)).filter((f) => /^licen[cs]e/i.test(f));
  return `${pkg}@${meta.version}\t${meta.license ?? "see package"}\t${files.join(" ") || "-"}`;
});
writeFileSync("dist/LICENSES.txt", `package\tlicence\tlicence file\n${lines.join("\n")}\n`);
if (!existsSync("dist/LICENSES.txt")) process.exit(1);
console.log(`built dist/: ${Object.keys(entries).join(", ")}; ${lines.length} packages (dist/LICENSES.txt)`);
