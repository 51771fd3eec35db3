import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { AuthService, type User } from "../gen/guard/auth/v1/auth_pb.js";

/**
 * How a client authenticates its calls.
 *
 * - `password`: logs in with these on the first call that needs it; the
 *   access and refresh tokens are kept in memory only.
 * - `cookie`: a browser's HttpOnly session cookie (fetch with
 *   `credentials: "include"`); `login()` asks for `useCookie: true`.
 * - `apiKey`: sent as `Authorization: Bearer gk_...`.
 * - `tokenSource`: the caller's own access tokens, asked for at every call;
 *   never refreshed by the client.
 */
export type Credentials =
  | { kind: "password"; email: string; password: string }
  | { kind: "cookie" }
  | { kind: "apiKey"; key: string }
  | { kind: "tokenSource"; token: () => string | Promise<string> };

/** Why a client became signed out. */
export type SignedOutReason = "logout" | "refresh-failed" | "session-ended";

interface Tokens {
  access: string;
  refresh: string;
}

/**
 * Session holds a client's credential, signs it in and out, and provides
 * the interceptor that authenticates every call and refreshes expired
 * access tokens.
 */
export class Session {
  /** The transport with the session's interceptor; every client uses it. */
  readonly transport: Transport;
  /** AuthService on that transport; Login and Refresh pass it untouched. */
  readonly auth: Client<typeof AuthService>;

  readonly #credentials: Credentials | undefined;
  // Tokens of a password session: memory only, never storage, where any
  // script of the page could read them.
  #tokens: Tokens | undefined;
  // Password credentials not used yet. They are dropped once used, so that
  // a session that ended stays ended rather than logging in again behind
  // the user's back.
  #pendingLogin: { email: string; password: string } | undefined;
  #signedIn: boolean;
  // Bumped at every sign-in and sign-out, so that a Refresh that was in
  // flight then cannot bring back or overwrite the session.
  #epoch = 0;
  #refreshing: Promise<string | undefined> | undefined;
  #loggingIn: Promise<User> | undefined;
  readonly #listeners = new Set<(reason: SignedOutReason) => void>();

  constructor(
    credentials: Credentials | undefined,
    newTransport: (interceptors: Interceptor[]) => Transport,
  ) {
    this.#credentials = credentials;
    if (credentials?.kind === "password") {
      this.#pendingLogin = { email: credentials.email, password: credentials.password };
    }
    // An API key or a token source is a credential already: signed in
    // until logout().
    this.#signedIn = credentials?.kind === "apiKey" || credentials?.kind === "tokenSource";
    this.transport = newTransport([this.#intercept]);
    this.auth = createClient(AuthService, this.transport);
  }

  get signedIn(): boolean {
    return this.#signedIn;
  }

  onSignedOut(listener: (reason: SignedOutReason) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async login(email: string, password: string): Promise<User> {
    const kind = this.#credentials?.kind;
    if (kind === "apiKey" || kind === "tokenSource") {
      throw new Error(`login() needs password or cookie credentials, not ${kind}`);
    }
    const useCookie = kind === "cookie";
    const res = await this.auth.login({ email, password, useCookie });
    if (!res.user) throw new Error("Login answered without a user");
    this.#epoch++;
    this.#pendingLogin = undefined;
    this.#tokens = useCookie ? undefined : { access: res.accessToken, refresh: res.refreshToken };
    this.#signedIn = true;
    return res.user;
  }

  async logout(): Promise<void> {
    try {
      if (this.#hasServerSession()) await this.auth.logout({});
    } catch (err) {
      // Already ended on the server: signed out all the same.
      if (ConnectError.from(err).code !== Code.Unauthenticated) throw err;
    } finally {
      // Forget the credential even if the server could not be told.
      this.#signOut("logout");
    }
  }

  /** Whether there may be a session on the server for Logout to end. */
  #hasServerSession(): boolean {
    switch (this.#credentials?.kind) {
      case "apiKey":
        return false; // a key has no session (Logout refuses it): revoke the key instead
      case "cookie":
        return true; // after a page load, only the server knows
      case "tokenSource":
        return this.#signedIn;
      default:
        return this.#tokens !== undefined; // unused password credentials made none
    }
  }

  #signOut(reason: SignedOutReason): void {
    const wasSignedIn = this.#signedIn;
    this.#epoch++;
    this.#tokens = undefined;
    this.#pendingLogin = undefined;
    this.#signedIn = false;
    if (!wasSignedIn) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(reason);
      } catch (err) {
        // A listener's bug must not replace the error of the call that
        // signed the client out; it is reported on its own instead.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** The bearer credential for the next call, if any. */
  async #bearer(): Promise<string | undefined> {
    const credentials = this.#credentials;
    if (!this.#signedIn && this.#pendingLogin === undefined) return undefined;
    switch (credentials?.kind) {
      case "apiKey":
        return credentials.key;
      case "tokenSource":
        return await credentials.token();
      case "cookie":
        return undefined; // the browser attaches the cookie
      default:
        if (this.#tokens === undefined && this.#pendingLogin !== undefined) {
          await this.#firstLogin(this.#pendingLogin);
        }
        return this.#tokens?.access;
    }
  }

  /** Logs in with the password credentials; concurrent callers share one Login. */
  #firstLogin(pending: { email: string; password: string }): Promise<User> {
    this.#loggingIn ??= this.login(pending.email, pending.password)
      .catch((err: unknown) => {
        // A wrong password stays wrong, and every try counts towards the
        // server's lockout: do not try it again.
        if (ConnectError.from(err).code === Code.Unauthenticated) this.#pendingLogin = undefined;
        throw err;
      })
      .finally(() => {
        this.#loggingIn = undefined;
      });
    return this.#loggingIn;
  }

  /**
   * A fresh access token to replace `failed`, or undefined if the session
   * is over. Concurrent callers share one Refresh RPC, and a caller whose
   * token was already replaced gets the new one without another Refresh.
   */
  async #refresh(failed: string): Promise<string | undefined> {
    const tokens = this.#tokens;
    if (tokens === undefined) return undefined;
    if (tokens.access !== failed) return tokens.access;
    this.#refreshing ??= this.#rotate(tokens.refresh).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #rotate(refreshToken: string): Promise<string | undefined> {
    const epoch = this.#epoch;
    try {
      const res = await this.auth.refresh({ refreshToken });
      if (epoch !== this.#epoch) return this.#tokens?.access; // signed out, or in anew, meanwhile
      // Rotation: the old refresh token is spent; presenting it again
      // would make the server revoke the session.
      this.#tokens = { access: res.accessToken, refresh: res.refreshToken };
      return res.accessToken;
    } catch (err) {
      // Only a refusal ends the session. Anything else (network, rate
      // limit, server error) may pass, so the error surfaces and the
      // session stays for the next call to try again.
      if (ConnectError.from(err).code !== Code.Unauthenticated) throw err;
      if (epoch === this.#epoch) this.#signOut("refresh-failed");
      return undefined;
    }
  }

  readonly #intercept: Interceptor = (next) => async (req) => {
    // Login and Refresh carry their credential in the message; a stale
    // bearer beside it could only get them refused.
    if (req.method === AuthService.method.login || req.method === AuthService.method.refresh) {
      return next(req);
    }
    const bearer = await this.#bearer();
    if (bearer !== undefined) req.header.set("Authorization", `Bearer ${bearer}`);
    try {
      const res = await next(req);
      // The server took the cookie: after a page load, this is how the
      // client learns that it is signed in.
      if (this.#credentials?.kind === "cookie") this.#signedIn = true;
      return res;
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Unauthenticated) throw err;
      switch (this.#credentials?.kind) {
        case "cookie":
          // Cookie sessions are not refreshed: the session has ended.
          // (Logout's own refusal is left to logout(), which says "logout".)
          if (req.method !== AuthService.method.logout) this.#signOut("session-ended");
          throw err;
        case "apiKey":
        case "tokenSource":
          throw err; // the caller's credential: not ours to renew
      }
      // A stream's messages cannot be sent twice (Guard's RPCs are all
      // unary); without a token there is nothing to refresh.
      if (req.stream || bearer === undefined) throw err;
      const fresh = await this.#refresh(bearer);
      if (fresh === undefined) throw err; // signed out: the original error surfaces
      req.header.set("Authorization", `Bearer ${fresh}`);
      return next(req); // once: a second refusal surfaces as it is
    }
  };
}
