import { createClient, type Client, type Interceptor, type Transport as ConnectTransport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { AdminService } from "../gen/guard/admin/v1/admin_pb.js";
import type { AuthService, User } from "../gen/guard/auth/v1/auth_pb.js";
import { NoteService } from "../gen/guard/notes/v1/notes_pb.js";
import { Session, type Credentials, type SignedOutReason } from "./session.js";

/** The wire protocol. "grpc" needs Node's HTTP/2: see the "/node" entry point. */
export type Transport = "connect" | "grpc-web" | "grpc";

export interface GuardClientOptions {
  /** The server, such as "https://api.example.com" or "http://127.0.0.1:8080". */
  baseUrl: string;
  /** Default "connect". */
  transport?: Transport;
  /** Default: none, until login(). */
  credentials?: Credentials;
  /** The fetch of the "connect" and "grpc-web" transports; default globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
  /**
   * Connect only: JSON (true) or binary protobuf (false). JSON by default,
   * which browsers' developer tools can show; binary from the "/node" entry.
   */
  json?: boolean;
}

export interface GuardClient {
  auth: Client<typeof AuthService>;
  notes: Client<typeof NoteService>;
  admin: Client<typeof AdminService>;
  /** Password (or no) credentials: keeps the tokens in memory. Cookie: asks for a session cookie. */
  login(email: string, password: string): Promise<User>;
  /** Ends the session on the server (Logout), then forgets the credential. */
  logout(): Promise<void>;
  readonly signedIn: boolean;
  /** Called once each time the client goes from signed in to signed out; returns an unsubscribe. */
  onSignedOut(listener: (reason: SignedOutReason) => void): () => void;
}

/** Builds a GuardClient on the transport that newTransport makes. */
export function newGuardClient(
  options: GuardClientOptions,
  newTransport: (interceptors: Interceptor[]) => ConnectTransport,
): GuardClient {
  const session = new Session(options.credentials, newTransport);
  return {
    auth: session.auth,
    notes: createClient(NoteService, session.transport),
    admin: createClient(AdminService, session.transport),
    login: (email, password) => session.login(email, password),
    logout: () => session.logout(),
    get signedIn() {
      return session.signedIn;
    },
    onSignedOut: (listener) => session.onSignedOut(listener),
  };
}

/** A fetch-based transport: "connect" or "grpc-web". */
export function webTransport(
  options: GuardClientOptions,
  interceptors: Interceptor[],
  json: boolean,
): ConnectTransport {
  const { baseUrl } = options;
  const fetch = fetchWithCredentials(options);
  switch (options.transport ?? "connect") {
    case "connect":
      return createConnectTransport({ baseUrl, useBinaryFormat: !json, fetch, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, useBinaryFormat: true, fetch, interceptors });
    case "grpc":
      throw new Error(
        'transport "grpc" needs Node\'s HTTP/2: import { createGuardClient } from "@connectguard/guard-client/node"',
      );
  }
}

/**
 * The cookie session needs `credentials: "include"` (the app and the API
 * may be on different origins). Every other kind sends `"omit"`: a session
 * cookie left in the browser would otherwise ride along with the bearer
 * token, and the server refuses a call with two credentials.
 */
function fetchWithCredentials(options: GuardClientOptions): typeof globalThis.fetch {
  const credentials: RequestCredentials = options.credentials?.kind === "cookie" ? "include" : "omit";
  // globalThis.fetch is looked up at each call, so a polyfill or a test's
  // stub installed after the client was made is used.
  return (input, init) => (options.fetch ?? globalThis.fetch)(input, { ...init, credentials });
}
