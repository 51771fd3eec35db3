// Refresh of expired access tokens, against a server whose tokens last 5 s
// (-access-token-ttl=5s, plus its clock-skew leeway). The cases wait for
// expiry side by side, each with a user of its own: the reuse case ends its
// user's session.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, createGuardClient, type GuardClient, type SignedOutReason } from "../src/index.js";
import {
  ADMIN,
  PASSWORD,
  createUser,
  rejection,
  rejectsWith,
  spyFetch,
  startServer,
  waitUntilExpired,
  type GuardServer,
} from "./harness.js";

describe("refresh", { concurrency: true }, () => {
  let server: GuardServer;
  let admin: GuardClient;

  before(async () => {
    server = await startServer(["-access-token-ttl=5s"]);
    admin = createGuardClient({ baseUrl: server.url, credentials: { kind: "password", ...ADMIN } });
    for (const name of ["expiry", "storm", "outage", "reuse"]) await createUser(admin, `${name}@example.com`);
  });
  after(() => server?.stop());

  /** A signed-in client of user name, and the spy on its fetch. */
  async function signedIn(name: string) {
    const spy = spyFetch();
    const client = createGuardClient({
      baseUrl: server.url,
      credentials: { kind: "password", email: `${name}@example.com`, password: PASSWORD },
      fetch: spy.fetch,
    });
    await client.auth.whoAmI({});
    assert.equal(spy.count("Login"), 1);
    return { client, spy };
  }

  test("an expired access token is refreshed once, and the call retried", async () => {
    const { client, spy } = await signedIn("expiry");
    const first = spy.tokens();
    await waitUntilExpired(server.url, first.access);

    const res = await client.notes.listNotes({});
    assert.deepEqual(res.notes, []);
    assert.equal(spy.count("Refresh"), 1);
    assert.equal(spy.count("ListNotes"), 2); // refused, then retried
    assert.equal(client.signedIn, true);
    // Rotation: the client now holds the new pair.
    assert.notEqual(spy.tokens().refresh, first.refresh);
    await client.auth.whoAmI({});
    assert.equal(spy.count("Refresh"), 1);
  });

  test("ten calls at once with an expired token share one Refresh", async () => {
    const { client, spy } = await signedIn("storm");
    await waitUntilExpired(server.url, spy.tokens().access);

    const results = await Promise.allSettled(Array.from({ length: 10 }, () => client.notes.listNotes({})));
    for (const r of results) assert.equal(r.status, "fulfilled", r.status === "rejected" ? String(r.reason) : "");
    assert.equal(spy.count("ListNotes"), 20); // all ten were refused, then retried
    assert.equal(spy.count("Refresh"), 1);
    assert.equal(spy.count("Login"), 1);
    assert.equal(client.signedIn, true);
  });

  test("a Refresh lost on the way keeps the session for the next call", async () => {
    // The first Refresh never reaches the server, as on a network outage.
    let dropRefresh = true;
    const flaky: typeof globalThis.fetch = (input, init) => {
      if (dropRefresh && String(input).endsWith("/Refresh")) {
        dropRefresh = false;
        return Promise.reject(new TypeError("fetch failed"));
      }
      return globalThis.fetch(input, init);
    };
    const spy = spyFetch(flaky);
    const client = createGuardClient({
      baseUrl: server.url,
      credentials: { kind: "password", email: "outage@example.com", password: PASSWORD },
      fetch: spy.fetch,
    });
    const reasons: SignedOutReason[] = [];
    client.onSignedOut((r) => reasons.push(r));
    await client.auth.whoAmI({});
    await waitUntilExpired(server.url, spy.tokens().access);

    // The outage surfaces as what it is, not as a credential problem...
    const err = await rejection(client.notes.listNotes({}));
    assert.notEqual(err.code, Code.Unauthenticated);
    assert.equal(client.signedIn, true);
    assert.deepEqual(reasons, []);
    // ...and the next call refreshes with the same, unspent token.
    await client.notes.listNotes({});
    assert.equal(spy.count("Refresh"), 2);
    assert.equal(spy.count("Login"), 1);
  });

  test("a reused refresh token: the server revokes the session, the client signs out", async () => {
    const { client, spy } = await signedIn("reuse");
    const reasons: SignedOutReason[] = [];
    client.onSignedOut((r) => reasons.push(r));
    const stolen = spy.tokens();

    // Someone else spends the client's refresh token first.
    const thief = createGuardClient({ baseUrl: server.url });
    const theirs = await thief.auth.refresh({ refreshToken: stolen.refresh });

    // The client's access token expires; its Refresh presents the spent
    // token, and the server ends the session (the thief's pair too).
    await waitUntilExpired(server.url, stolen.access);
    const err = await rejectsWith(client.notes.listNotes({}), Code.Unauthenticated);
    assert.notEqual(err.rawMessage, "invalid refresh token", "the original error surfaces, not Refresh's");
    assert.equal(spy.count("Refresh"), 1);
    assert.equal(client.signedIn, false);
    assert.deepEqual(reasons, ["refresh-failed"]);
    await rejectsWith(thief.auth.refresh({ refreshToken: theirs.refreshToken }), Code.Unauthenticated);

    // Signed out: calls fail, and nothing is tried on the client's behalf.
    await rejectsWith(client.auth.whoAmI({}), Code.Unauthenticated);
    assert.equal(spy.count("Refresh"), 1);
    assert.equal(spy.count("Login"), 1);
    assert.deepEqual(reasons, ["refresh-failed"]);
  });
});
