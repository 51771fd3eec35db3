// What the tests share: a real Guard server of their own, built from this
// checkout, and fetch wrappers that count calls and keep cookies.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ConnectError, type Code } from "@connectrpc/connect";
import type { GuardClient } from "../src/index.js";

/** clients/ts: this file runs as dist-test/test/harness.js. */
export const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const repoRoot = path.resolve(packageDir, "../..");

/** The admin every test server starts with. */
export const ADMIN = { email: "admin@example.com", password: "correct horse battery staple" } as const;
/** Strong enough for the server's password check. */
export const PASSWORD = "a long test password 1";

/** Builds ./cmd/server into binary. */
export async function buildServer(binary: string): Promise<void> {
  await promisify(execFile)("go", ["build", "-o", binary, "./cmd/server"], { cwd: repoRoot });
}

let built: Promise<string> | undefined;

/**
 * The server binary: the one test/run.ts built (GUARD_TEST_SERVER), or,
 * for a test file run on its own, one built here.
 */
function serverBinary(): Promise<string> {
  built ??= (async () => {
    const given = process.env.GUARD_TEST_SERVER;
    if (given) return given;
    const dir = await mkdtemp(path.join(tmpdir(), "guard-ts-bin-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    const binary = path.join(dir, "guard");
    await buildServer(binary);
    return binary;
  })();
  return built;
}

export interface GuardServer {
  /** Such as http://127.0.0.1:40123. */
  url: string;
  /** SIGINT, then waits for the process to exit. */
  stop(): Promise<void>;
}

/** Starts a server on a free port with a fresh database; flags are added to the defaults. */
export async function startServer(flags: string[] = []): Promise<GuardServer> {
  const binary = await serverBinary();
  const dir = await mkdtemp(path.join(tmpdir(), "guard-ts-test-"));
  // Every flag has a GUARD_* twin: none from the caller's environment may
  // change what the tests expect.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("GUARD_")));
  env.GUARD_ADMIN_EMAIL = ADMIN.email;
  env.GUARD_ADMIN_PASSWORD = ADMIN.password;
  const child = spawn(binary, ["-addr=127.0.0.1:0", `-db=${path.join(dir, "guard.db")}`, ...flags], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill); // should the test process end without stop()
  let log = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    log = (log + chunk).slice(-20_000);
  });

  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    // Generous: two slow shared cores, a cold SQLite and key generation.
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`guard did not start within 60 s:\n${log}`));
    }, 60_000);
    lines.on("line", (line) => {
      const m = /^guard listening on (http:\/\/\S+)$/.exec(line);
      if (!m?.[1]) return;
      clearTimeout(timer);
      resolve(m[1]);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`guard exited before listening:\n${log}`));
    });
  });

  return {
    url,
    async stop() {
      process.off("exit", kill);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGINT");
        const timer = setTimeout(kill, 20_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Creates a member (by default) with PASSWORD, as the admin client. */
export async function createUser(admin: GuardClient, email: string, roles = ["member"]) {
  const res = await admin.admin.createUser({ email, password: PASSWORD, roles });
  assert.ok(res.user);
  return res.user;
}

/** The ConnectError that p rejects with; fails the test if p resolves. */
export async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConnectError, `not a ConnectError: ${String(err)}`);
    return err;
  }
  assert.fail("the call succeeded, but an error was expected");
}

/** Asserts that p rejects with code, and returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: Code): Promise<ConnectError> {
  const err = await rejection(p);
  assert.equal(err.code, code, `code ${err.code}, want ${code}: ${err.message}`);
  return err;
}

/**
 * A fetch that counts calls per method name ("Login", "Refresh", ...) and
 * remembers the last tokens that Login or Refresh returned over Connect
 * JSON: the client keeps its tokens to itself, and a test sometimes needs
 * them.
 */
export function spyFetch(inner: typeof globalThis.fetch = globalThis.fetch) {
  const counts = new Map<string, number>();
  let tokens: { access: string; refresh: string } | undefined;
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : input.toString();
    const method = url.slice(url.lastIndexOf("/") + 1);
    counts.set(method, (counts.get(method) ?? 0) + 1);
    const res = await inner(input, init);
    if ((method === "Login" || method === "Refresh") && res.ok && res.headers.get("Content-Type") === "application/json") {
      const body = (await res.clone().json()) as { accessToken?: string; refreshToken?: string };
      if (body.accessToken && body.refreshToken) tokens = { access: body.accessToken, refresh: body.refreshToken };
    }
    return res;
  };
  return {
    fetch,
    count: (method: string) => counts.get(method) ?? 0,
    tokens(): { access: string; refresh: string } {
      assert.ok(tokens, "no tokens seen (Connect JSON only)");
      return tokens;
    },
  };
}

/**
 * A fetch with the cookie jar of a browser, reduced to what Guard's session
 * cookie needs: Node's fetch keeps no cookies.
 */
export function cookieJarFetch(inner: typeof globalThis.fetch = globalThis.fetch) {
  const jar = new Map<string, string>();
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    if (jar.size > 0) headers.set("Cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await inner(input, { ...init, headers });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = "", ...attributes] = cookie.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*(0|-)/i.test(a));
      if (expired || value === "") jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
  return { fetch, jar };
}

/**
 * Waits until the server refuses accessToken as expired, asking it once a
 * second (a raw call, which no client under test sees). Bounded: the TTL
 * plus the server's clock-skew leeway, with room to spare.
 */
export async function waitUntilExpired(baseUrl: string, accessToken: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const res = await fetch(`${baseUrl}/guard.auth.v1.AuthService/WhoAmI`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${accessToken}` },
      body: "{}",
    });
    await res.arrayBuffer();
    if (res.status === 401) return;
    assert.equal(res.status, 200);
    assert.ok(Date.now() < deadline, "the access token did not expire within 90 s");
    await sleep(1000);
  }
}
