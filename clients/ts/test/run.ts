// npm test: builds the Go server once, then runs every *.test.js beside
// this file with Node's test runner. Each test file starts servers of its
// own from that binary (GUARD_TEST_SERVER), so the files run side by side,
// and the rate limits of one (Login: 20 a minute per IP) do not eat into
// another's. Arguments go to node --test (--test-name-pattern=..., say).

import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildServer } from "./harness.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = await mkdtemp(path.join(tmpdir(), "guard-ts-bin-"));
try {
  const binary = path.join(dir, "guard");
  const started = Date.now();
  await buildServer(binary);
  console.log(`built the Go server in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const files = (await readdir(here)).filter((f) => f.endsWith(".test.js")).sort();
  const args = [
    "--test",
    "--test-reporter=spec",
    "--test-concurrency=4",
    // A hung call fails its test instead of the run.
    "--test-timeout=180000",
    ...process.argv.slice(2),
    ...files.map((f) => path.join(here, f)),
  ];
  const child = spawn(process.execPath, args, {
    stdio: "inherit",
    env: { ...process.env, GUARD_TEST_SERVER: binary },
  });
  process.exitCode = await new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
} finally {
  await rm(dir, { recursive: true, force: true });
}
