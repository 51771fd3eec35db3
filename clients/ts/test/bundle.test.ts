// The package as another package sees it: the main entry point bundles for
// browsers with nothing of Node in it, and "/node" resolves in Node.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import * as esbuild from "esbuild";
import { packageDir } from "./harness.js";

const built = existsSync(path.join(packageDir, "dist/src/index.js"));
const skip = built ? false : "dist/ is not built: npm run build";

test("a browser bundle of the main entry point has no Node module in it", { skip }, async () => {
  const result = await esbuild.build({
    stdin: {
      contents: 'export { createGuardClient, fieldViolations, retryDelayMs, requestId } from "@connectguard/guard-client";',
      resolveDir: packageDir, // resolved through package.json "exports", as for the web app
    },
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.some((f) => f.includes("dist/src/index.js")), inputs.join("\n"));
  assert.ok(!inputs.some((f) => f.includes("connect-node")), "connect-node in the browser bundle");
  const code = result.outputFiles[0]?.text ?? "";
  assert.doesNotMatch(code, /node:|http2/);
});

test('"@connectguard/guard-client/node" resolves in Node', { skip }, async () => {
  const node = (await import("@connectguard/guard-client/node" as string)) as Record<string, unknown>;
  assert.equal(typeof node.createGuardClient, "function");
  assert.equal(typeof node.fieldViolations, "function");
  assert.equal(typeof node.NoteService, "object");
});
