// @connectguard/guard-client: the Guard APIs over Connect or gRPC-Web, on
// fetch. Safe for browsers: nothing here imports a Node module. The gRPC
// transport, which needs Node's HTTP/2, is in "./node".

import { newGuardClient, webTransport, type GuardClient, type GuardClientOptions } from "./client.js";

export type { GuardClient, GuardClientOptions, Transport } from "./client.js";
export type { Credentials, SignedOutReason } from "./session.js";
export { fieldViolations, requestId, retryDelayMs } from "./errors.js";
// Connect's error and codes, so that an app compares codes against the
// same copy of @connectrpc/connect that the client throws from.
export { Code, ConnectError } from "@connectrpc/connect";
// The services' messages, enums and descriptors.
export * from "../gen/guard/admin/v1/admin_pb.js";
export * from "../gen/guard/auth/v1/auth_pb.js";
export * from "../gen/guard/notes/v1/notes_pb.js";

/**
 * A client of the three Guard services on one transport ("connect", JSON
 * by default, or "grpc-web") with one credential. For transport "grpc",
 * use the "@connectguard/guard-client/node" entry point.
 */
export function createGuardClient(options: GuardClientOptions): GuardClient {
  return newGuardClient(options, (interceptors) => webTransport(options, interceptors, options.json ?? true));
}
