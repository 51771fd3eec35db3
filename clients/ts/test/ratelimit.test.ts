// A 429 and its delay, against a server that allows each user 5 calls a
// minute (-user-rate-limit=5): over Connect, from the RetryInfo detail or
// the Retry-After header, and over gRPC, where the detail travels in a
// trailer.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, createGuardClient, retryDelayMs, type GuardClient } from "../src/node.js";
import { ADMIN, rejectsWith, startServer, type GuardServer } from "./harness.js";

describe("rate limits", () => {
  let server: GuardServer;
  let client: GuardClient;

  before(async () => {
    server = await startServer(["-user-rate-limit=5", "-user-rate-window=1m"]);
    client = createGuardClient({ baseUrl: server.url, json: true, credentials: { kind: "password", ...ADMIN } });
  });
  after(() => server?.stop());

  test("resource_exhausted carries the delay", async () => {
    // Login is public and not counted per user; WhoAmI is.
    let calls = 0;
    for (; calls < 5; calls++) await client.auth.whoAmI({});
    const err = await rejectsWith(client.auth.whoAmI({}), Code.ResourceExhausted);
    const delay = retryDelayMs(err);
    assert.ok(delay !== undefined && delay > 0 && delay <= 70_000, `delay ${delay}`);
    // The header says the same, in whole seconds rounded up.
    const header = Number(err.metadata.get("Retry-After"));
    assert.ok(header > 0);
    assert.ok(Math.abs(header * 1000 - delay) <= 1000, `header ${header} s, detail ${delay} ms`);
    assert.match(err.metadata.get("RateLimit") ?? "", /"user";r=0/);
    // Still signed in: a rate limit is not a credential problem.
    assert.equal(client.signedIn, true);
  });

  test("over gRPC too (the user's budget is shared by every protocol)", async () => {
    const grpc = createGuardClient({ baseUrl: server.url, transport: "grpc", credentials: { kind: "password", ...ADMIN } });
    const err = await rejectsWith(grpc.auth.whoAmI({}), Code.ResourceExhausted);
    const delay = retryDelayMs(err);
    assert.ok(delay !== undefined && delay > 0 && delay <= 70_000, `delay ${delay}`);
  });
});
