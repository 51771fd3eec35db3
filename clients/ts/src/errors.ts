import { fromBinary } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { ViolationsSchema, type FieldPathElement } from "../gen/buf/validate/validate_pb.js";

// These helpers take `unknown`, as a catch clause gives, and answer "none"
// for anything that is not a ConnectError. instanceof is safe across two
// copies of @connectrpc/connect: ConnectError checks the shape.

/**
 * The field violations of an `invalid_argument` error, from its
 * `buf.validate.Violations` details: field path (such as `"note.title"` or
 * `"tags[0]"`) to message, the first message of each field. A violation of
 * the message as a whole (a rule across fields) has the path `""`. `{}`
 * when there are none.
 */
export function fieldViolations(err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(err instanceof ConnectError)) return out;
  for (const { violations } of err.findDetails(ViolationsSchema)) {
    for (const v of violations) {
      const path = fieldPath(v.field?.elements ?? []);
      out[path] ??= v.message;
    }
  }
  return out;
}

/** The path as protovalidate prints it: `note.title`, `tags[0]`, `labels["k"]`. */
function fieldPath(elements: FieldPathElement[]): string {
  let path = "";
  for (const { fieldName, subscript } of elements) {
    path += path === "" ? fieldName : `.${fieldName}`;
    switch (subscript.case) {
      case "stringKey":
        path += `[${JSON.stringify(subscript.value)}]`;
        break;
      case "index":
      case "boolKey":
      case "intKey":
      case "uintKey":
        path += `[${subscript.value}]`;
        break;
    }
  }
  return path;
}

/**
 * How long to wait before retrying a `resource_exhausted` error, in
 * milliseconds: from its `google.rpc.RetryInfo` detail, else from its
 * `Retry-After` header. undefined for other errors, or when the server
 * gave no delay.
 */
export function retryDelayMs(err: unknown): number | undefined {
  if (!(err instanceof ConnectError) || err.code !== Code.ResourceExhausted) return undefined;
  for (const detail of err.details) {
    if ("type" in detail && detail.type === "google.rpc.RetryInfo") {
      const ms = retryInfoDelayMs(detail.value);
      if (ms !== undefined) return ms;
    }
  }
  return retryAfterMs(err.metadata.get("Retry-After"));
}

// google.rpc.RetryInfo is `{ google.protobuf.Duration retry_delay = 1; }`.
// No Guard proto imports it, so it is not among the generated files, and
// reading its one field off the wire is simpler than describing it.
function retryInfoDelayMs(bytes: Uint8Array): number | undefined {
  try {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1 && wireType === WireType.LengthDelimited) {
        const delay = fromBinary(DurationSchema, reader.bytes());
        return Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6);
      }
      reader.skip(wireType);
    }
  } catch {
    // A malformed detail: fall back to the header.
  }
  return undefined;
}

/** Retry-After is whole seconds (what Guard sends) or an HTTP date. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * The request id of the call that failed, to quote to whoever reads the
 * server's logs: the `X-Request-Id` response header, else the id in an
 * internal error's message, "internal error (request id X)".
 */
export function requestId(err: unknown): string | undefined {
  if (!(err instanceof ConnectError)) return undefined;
  return err.metadata.get("X-Request-Id") ?? /\(request id ([^)\s]+)\)/.exec(err.rawMessage)?.[1];
}
