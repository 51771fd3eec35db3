// The same calls over every transport: Connect (JSON and binary) and
// gRPC-Web on fetch, gRPC on Node's HTTP/2 (h2c), including the error
// details and a refresh, which travel differently on each.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as browser from "../src/index.js";
import { AuthMethod, Code, createGuardClient, fieldViolations, requestId, type GuardClientOptions } from "../src/node.js";
import { ADMIN, PASSWORD, createUser, rejectsWith, startServer, type GuardServer } from "./harness.js";

type Variant = Pick<GuardClientOptions, "transport" | "json">;

const variants: Record<string, Variant> = {
  "connect, JSON": { transport: "connect", json: true },
  "connect, binary": { transport: "connect", json: false },
  "grpc-web": { transport: "grpc-web" },
  "grpc (HTTP/2, h2c)": { transport: "grpc" },
};

describe("transports", () => {
  let server: GuardServer;
  let admin: browser.GuardClient;
  const clients = new Map<string, browser.GuardClient>();

  before(async () => {
    server = await startServer();
    admin = browser.createGuardClient({ baseUrl: server.url, credentials: { kind: "password", ...ADMIN } });
    for (const [i, [name, variant]] of Object.entries(variants).entries()) {
      const email = `user${i}@example.com`;
      await createUser(admin, email);
      const credentials = { kind: "password", email, password: PASSWORD } as const;
      clients.set(name, createGuardClient({ baseUrl: server.url, ...variant, credentials }));
    }
  });
  after(() => server?.stop());

  for (const name of Object.keys(variants)) {
    test(name, async () => {
      const client = clients.get(name);
      assert.ok(client);
      const me = await client.auth.whoAmI({});
      assert.equal(me.authMethod, AuthMethod.ACCESS_TOKEN);

      const created = await client.notes.createNote({ title: `over ${name}`, body: "é ✓" });
      const id = created.note?.id ?? "";
      const got = await client.notes.getNote({ id });
      assert.equal(got.note?.title, `over ${name}`);
      assert.equal(got.note?.body, "é ✓");

      const invalid = await rejectsWith(client.notes.createNote({ title: "" }), Code.InvalidArgument);
      assert.deepEqual(fieldViolations(invalid), { title: "must be at least 1 characters" });

      const missing = await rejectsWith(client.notes.getNote({ id: "a".repeat(26) }), Code.NotFound);
      assert.ok(requestId(missing));
    });
  }

  test("a revoked signing key: every transport refreshes and retries", async () => {
    // Tokens signed by the old key stop working at once; each client gets
    // unauthenticated, refreshes, and its call goes through.
    await admin.admin.rotateSigningKey({ revokePrevious: true });
    for (const [name, client] of clients) {
      const me = await client.auth.whoAmI({});
      assert.ok(me.user, name);
      assert.equal(client.signedIn, true, name);
    }
  });

  test("the default transport of each entry point", async () => {
    const seen: string[] = [];
    const fetch: typeof globalThis.fetch = (input, init) => {
      seen.push(new Headers(init?.headers).get("Content-Type") ?? "");
      return globalThis.fetch(input, init);
    };
    const credentials = { kind: "password", ...ADMIN } as const;
    await browser.createGuardClient({ baseUrl: server.url, credentials, fetch }).auth.whoAmI({});
    await createGuardClient({ baseUrl: server.url, credentials, fetch }).auth.whoAmI({});
    // Login, then WhoAmI, for each.
    assert.deepEqual(seen, ["application/json", "application/json", "application/proto", "application/proto"]);
  });

  test('the main entry point sends "grpc" to the Node one', () => {
    assert.throws(
      () => browser.createGuardClient({ baseUrl: server.url, transport: "grpc" }),
      /@connectguard\/guard-client\/node/,
    );
    assert.throws(
      () => createGuardClient({ baseUrl: server.url, transport: "grpc", credentials: { kind: "cookie" } }),
      /cookie/,
    );
  });
});
