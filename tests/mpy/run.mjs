// Run a Python script under real MicroPython (the WebAssembly port from npm).
//
//   node tests/mpy/run.mjs [--mount HOSTDIR:MPDIR ...] [--path MPDIR ...] SCRIPT.py
//
// Every file under HOSTDIR is copied into MicroPython's in-memory file system
// at MPDIR. --path entries are put first on sys.path. The script's output goes
// to stdout/stderr; the exit status is 1 if the script raised, 0 otherwise.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const args = process.argv.slice(2);
const mounts = [];
const paths = [];
let script = null;
let heapMiB = 64;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--mount") mounts.push(args[++i]);
  else if (args[i] === "--path") paths.push(args[++i]);
  else if (args[i] === "--heap-mib") heapMiB = Number(args[++i]);
  else script = args[i];
}
if (!script) {
  console.error("usage: run.mjs [--mount HOST:MP ...] [--path MP ...] SCRIPT.py");
  process.exit(2);
}

const mp = await loadMicroPython({
  heapsize: heapMiB * 1024 * 1024,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function mkdirs(path) {
  let cur = "";
  for (const part of path.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
function copyTree(hostDir, mpDir) {
  mkdirs(mpDir);
  for (const name of readdirSync(hostDir)) {
    if (name === "__pycache__") continue;
    const src = join(hostDir, name);
    const dst = mpDir.replace(/\/$/, "") + "/" + name;
    if (statSync(src).isDirectory()) copyTree(src, dst);
    else mp.FS.writeFile(dst, readFileSync(src));
  }
}
for (const m of mounts) {
  const at = m.lastIndexOf(":");
  copyTree(m.slice(0, at), m.slice(at + 1));
}

const prelude = "import sys\n" + paths.reverse().map((p) => `sys.path.insert(0, ${JSON.stringify(p)})\n`).join("");
try {
  await mp.runPythonAsync(prelude + readFileSync(script, "utf8"));
} catch (err) {
  // The Python traceback was already printed through stderr.
  if (err && err.message) process.stderr.write(String(err.message) + "\n");
  process.exit(1);
}
process.exit(0);
