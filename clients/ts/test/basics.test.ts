// The client against a real server over Connect JSON: each kind of
// credential, notes and sharing, the error helpers, logout.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  AuthMethod,
  Code,
  createGuardClient,
  fieldViolations,
  requestId,
  SharePermission,
  type GuardClient,
  type SignedOutReason,
  type User,
} from "../src/index.js";
import {
  ADMIN,
  cookieJarFetch,
  createUser,
  PASSWORD,
  rejectsWith,
  spyFetch,
  startServer,
  type GuardServer,
} from "./harness.js";

describe("against a server", () => {
  let server: GuardServer;
  let admin: GuardClient;
  let alice: GuardClient;
  let bob: GuardClient;
  let bobUser: User;
  const aliceSpy = spyFetch();

  before(async () => {
    server = await startServer();
    const baseUrl = server.url;
    admin = createGuardClient({ baseUrl, credentials: { kind: "password", ...ADMIN } });
    await createUser(admin, "alice@example.com");
    bobUser = await createUser(admin, "bob@example.com");
    alice = createGuardClient({
      baseUrl,
      credentials: { kind: "password", email: "alice@example.com", password: PASSWORD },
      fetch: aliceSpy.fetch,
    });
    bob = createGuardClient({ baseUrl, credentials: { kind: "password", email: "bob@example.com", password: PASSWORD } });
  });
  after(() => server?.stop());

  test("password credentials log in on first need, once for concurrent calls", async () => {
    assert.equal(alice.signedIn, false);
    const answers = await Promise.all(Array.from({ length: 5 }, () => alice.auth.whoAmI({})));
    for (const res of answers) {
      assert.equal(res.user?.email, "alice@example.com");
      assert.equal(res.authMethod, AuthMethod.ACCESS_TOKEN);
    }
    assert.equal(aliceSpy.count("Login"), 1);
    assert.equal(alice.signedIn, true);
    assert.equal(admin.signedIn, true); // it created the users
  });

  test("login() with no credentials keeps the tokens", async () => {
    const client = createGuardClient({ baseUrl: server.url });
    await rejectsWith(client.auth.whoAmI({}), Code.Unauthenticated);
    const user = await client.login("bob@example.com", PASSWORD);
    assert.equal(user.id, bobUser.id);
    assert.equal(client.signedIn, true);
    const res = await client.auth.whoAmI({});
    assert.equal(res.user?.id, bobUser.id);
  });

  test("notes: create, get, list, update with a mask, share, delete", async () => {
    const created = await alice.notes.createNote({ title: "First note", body: "Hello" });
    const id = created.note?.id;
    assert.ok(id);

    const got = await alice.notes.getNote({ id });
    assert.equal(got.note?.title, "First note");
    assert.equal(got.note?.body, "Hello");
    const listed = await alice.notes.listNotes({});
    assert.deepEqual(
      listed.notes.map((n) => n.id),
      [id],
    );

    // Only the title changes: the body is outside the mask.
    const updated = await alice.notes.updateNote({
      note: { id, title: "Renamed", body: "ignored" },
      updateMask: { paths: ["title"] },
    });
    assert.equal(updated.note?.title, "Renamed");
    assert.equal(updated.note?.body, "Hello");

    // Someone else's note is not found until it is shared.
    await rejectsWith(bob.notes.getNote({ id }), Code.NotFound);
    await alice.notes.shareNote({ id, userId: bobUser.id, permission: SharePermission.READER });
    const shared = await bob.notes.getNote({ id });
    assert.equal(shared.note?.title, "Renamed");
    assert.ok((await bob.notes.listNotes({})).notes.some((n) => n.id === id));
    // A reader cannot write.
    await rejectsWith(
      bob.notes.updateNote({ note: { id, title: "mine" }, updateMask: { paths: ["title"] } }),
      Code.PermissionDenied,
    );

    await alice.notes.deleteNote({ id });
    await rejectsWith(alice.notes.getNote({ id }), Code.NotFound);
    await rejectsWith(bob.notes.getNote({ id }), Code.NotFound);
  });

  test("fieldViolations: field paths and messages of invalid_argument", async () => {
    const empty = await rejectsWith(alice.notes.createNote({ title: "" }), Code.InvalidArgument);
    assert.deepEqual(fieldViolations(empty), { title: "must be at least 1 characters" });

    const long = await rejectsWith(alice.notes.createNote({ title: "x".repeat(201) }), Code.InvalidArgument);
    assert.deepEqual(fieldViolations(long), { title: "must be at most 200 characters" });

    // Nested fields get their path; a rule over the whole message gets "".
    const nested = await rejectsWith(
      alice.notes.updateNote({ note: { id: "not-an-id", title: "" }, updateMask: { paths: ["title", "owner"] } }),
      Code.InvalidArgument,
    );
    const violations = fieldViolations(nested);
    assert.equal(violations["note.id"], "does not match regex pattern `^[a-z2-7]{26}$`");
    assert.equal(violations["update_mask"], "update_mask paths must be one or more of title, body");
    assert.equal(violations[""], "title must not be empty when updated");

    // Not a validation error: none.
    const notFound = await rejectsWith(alice.notes.getNote({ id: "a".repeat(26) }), Code.NotFound);
    assert.deepEqual(fieldViolations(notFound), {});
    assert.deepEqual(fieldViolations(new Error("x")), {});
  });

  test("requestId: the X-Request-Id of a failed call", async () => {
    const err = await rejectsWith(alice.notes.getNote({ id: "a".repeat(26) }), Code.NotFound);
    const id = requestId(err);
    assert.ok(id, "no request id");
    assert.equal(id, err.metadata.get("X-Request-Id"));
    assert.match(id, /^[A-Za-z0-9_-]{8,64}$/);
    // Each call has its own.
    const again = await rejectsWith(alice.notes.getNote({ id: "a".repeat(26) }), Code.NotFound);
    assert.notEqual(requestId(again), id);
  });

  test("API key credentials", async () => {
    const created = await alice.auth.createAPIKey({ name: "ci", scopes: ["notes:read"], ttl: { seconds: 3600n } });
    assert.match(created.key, /^gk_/);
    const spy = spyFetch();
    const ci = createGuardClient({ baseUrl: server.url, credentials: { kind: "apiKey", key: created.key }, fetch: spy.fetch });
    assert.equal(ci.signedIn, true);

    const me = await ci.auth.whoAmI({});
    assert.equal(me.user?.email, "alice@example.com");
    assert.equal(me.authMethod, AuthMethod.API_KEY);
    assert.deepEqual(me.scopes, ["notes:read"]);
    await ci.notes.listNotes({});
    // Scoped: reading only. And no refresh or login is tried for a key.
    await rejectsWith(ci.notes.createNote({ title: "x" }), Code.PermissionDenied);

    // A key has no session for Logout: the client just forgets it.
    const reasons: SignedOutReason[] = [];
    ci.onSignedOut((r) => reasons.push(r));
    await ci.logout();
    assert.equal(ci.signedIn, false);
    assert.deepEqual(reasons, ["logout"]);
    await rejectsWith(ci.auth.whoAmI({}), Code.Unauthenticated);
    assert.equal(spy.count("Logout"), 0);
    assert.equal(spy.count("Login") + spy.count("Refresh"), 0);
  });

  test("tokenSource credentials: the caller's tokens, never refreshed", async () => {
    // The caller's own session, made without this client.
    const raw = await createGuardClient({ baseUrl: server.url }).auth.login({
      email: "bob@example.com",
      password: PASSWORD,
    });
    let token = raw.accessToken;
    let asked = 0;
    const spy = spyFetch();
    const client = createGuardClient({
      baseUrl: server.url,
      credentials: {
        kind: "tokenSource",
        token: async () => {
          asked++;
          return token;
        },
      },
      fetch: spy.fetch,
    });
    const me = await client.auth.whoAmI({});
    assert.equal(me.user?.id, bobUser.id);
    assert.equal(me.authMethod, AuthMethod.ACCESS_TOKEN);
    await client.notes.listNotes({});
    assert.equal(asked, 2); // at every call

    // A token the server refuses surfaces as it is: no Refresh, still "signed in".
    token = "not-a-token";
    await rejectsWith(client.auth.whoAmI({}), Code.Unauthenticated);
    assert.equal(spy.count("Refresh"), 0);
    assert.equal(client.signedIn, true);
    token = raw.accessToken;
    await client.auth.whoAmI({});

    // logout() ends the caller's session.
    await client.logout();
    assert.equal(client.signedIn, false);
    assert.equal(spy.count("Logout"), 1);
    const stale = createGuardClient({ baseUrl: server.url, credentials: { kind: "tokenSource", token: () => raw.accessToken } });
    await rejectsWith(stale.auth.whoAmI({}), Code.Unauthenticated);
  });

  test("cookie session: login with useCookie, logout, session ended by the server", async () => {
    const carol = await createUser(admin, "carol@example.com");
    const { fetch, jar } = cookieJarFetch();
    const spy = spyFetch(fetch);
    const client = createGuardClient({ baseUrl: server.url, credentials: { kind: "cookie" }, fetch: spy.fetch });
    const reasons: SignedOutReason[] = [];
    client.onSignedOut((r) => reasons.push(r));
    assert.equal(client.signedIn, false);
    // No cookie yet: refused, but the client was never signed in.
    await rejectsWith(client.auth.whoAmI({}), Code.Unauthenticated);
    assert.deepEqual(reasons, []);

    const user = await client.login("carol@example.com", PASSWORD);
    assert.equal(user.id, carol.id);
    assert.ok(jar.has("__Host-guard_session"), "no session cookie");
    assert.equal(client.signedIn, true);
    const me = await client.auth.whoAmI({});
    assert.equal(me.authMethod, AuthMethod.SESSION_COOKIE);

    await client.logout();
    assert.equal(client.signedIn, false);
    assert.equal(jar.size, 0, "the server clears the cookie");
    assert.deepEqual(reasons, ["logout"]);
    await rejectsWith(client.auth.whoAmI({}), Code.Unauthenticated);

    // A session the server ends (here: the user is disabled) is reported
    // once, as "session-ended"; cookie sessions are never refreshed.
    await client.login("carol@example.com", PASSWORD);
    await client.notes.listNotes({});
    await admin.admin.disableUser({ userId: carol.id });
    await rejectsWith(client.notes.listNotes({}), Code.Unauthenticated);
    assert.equal(client.signedIn, false);
    assert.deepEqual(reasons, ["logout", "session-ended"]);
    await rejectsWith(client.notes.listNotes({}), Code.Unauthenticated);
    assert.deepEqual(reasons, ["logout", "session-ended"]);
    assert.equal(spy.count("Refresh"), 0);
  });

  test("a client whose cookie is still good learns it is signed in", async () => {
    const { fetch } = cookieJarFetch();
    const first = createGuardClient({ baseUrl: server.url, credentials: { kind: "cookie" }, fetch });
    await first.login("alice@example.com", PASSWORD);
    // A page load: a new client, the same cookie jar.
    const reloaded = createGuardClient({ baseUrl: server.url, credentials: { kind: "cookie" }, fetch });
    assert.equal(reloaded.signedIn, false);
    await reloaded.auth.whoAmI({});
    assert.equal(reloaded.signedIn, true);
    await reloaded.logout();
    assert.equal(reloaded.signedIn, false);
  });

  test("logout with password credentials: signed out for good", async () => {
    const reasons: SignedOutReason[] = [];
    const unsubscribe = alice.onSignedOut((r) => reasons.push(r));
    await alice.logout();
    assert.equal(alice.signedIn, false);
    assert.deepEqual(reasons, ["logout"]);
    const logins = aliceSpy.count("Login");
    // No credential any more: no quiet login again, no refresh.
    await rejectsWith(alice.auth.whoAmI({}), Code.Unauthenticated);
    assert.equal(aliceSpy.count("Login"), logins);
    assert.equal(aliceSpy.count("Refresh"), 0);
    await alice.logout(); // twice is fine, and says nothing
    assert.deepEqual(reasons, ["logout"]);
    unsubscribe();

    // login() signs in again.
    await alice.login("alice@example.com", PASSWORD);
    assert.equal(alice.signedIn, true);
    await alice.auth.whoAmI({});
  });

  test("a wrong password surfaces, and is not tried again", async () => {
    const spy = spyFetch();
    const client = createGuardClient({
      baseUrl: server.url,
      credentials: { kind: "password", email: "alice@example.com", password: "wrong password" },
      fetch: spy.fetch,
    });
    const err = await rejectsWith(client.auth.whoAmI({}), Code.Unauthenticated);
    assert.equal(err.rawMessage, "invalid email or password");
    await rejectsWith(client.auth.whoAmI({}), Code.Unauthenticated);
    assert.equal(spy.count("Login"), 1);
    assert.equal(client.signedIn, false);
  });
});
