// @connectguard/guard-client/node: everything of the main entry point, and
// a createGuardClient that also speaks gRPC, over Node's HTTP/2 (h2c for
// http:// URLs). Kept apart so that browser bundles never see node:http2.

import { createGrpcTransport } from "@connectrpc/connect-node";
import { newGuardClient, webTransport, type GuardClient, type GuardClientOptions } from "./client.js";

// This module's createGuardClient takes the place of the main entry's.
export * from "./index.js";

/**
 * A client of the three Guard services for Node: "connect" (binary by
 * default; json: true for JSON) and "grpc-web" over fetch, and "grpc" over
 * HTTP/2, which ignores the fetch option.
 */
export function createGuardClient(options: GuardClientOptions): GuardClient {
  if (options.transport !== "grpc") {
    return newGuardClient(options, (interceptors) => webTransport(options, interceptors, options.json ?? false));
  }
  if (options.credentials?.kind === "cookie") {
    throw new Error('cookie credentials need a fetch that keeps cookies: use transport "connect" or "grpc-web"');
  }
  // Always HTTP/2; for http:// URLs with prior knowledge (h2c), as Guard serves it.
  return newGuardClient(options, (interceptors) => createGrpcTransport({ baseUrl: options.baseUrl, interceptors }));
}
