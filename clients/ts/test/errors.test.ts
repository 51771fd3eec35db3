// The error helpers on errors made here, for what a live server does not
// readily produce: an internal error, a Retry-After without a detail.

import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, fieldViolations, requestId, retryDelayMs } from "../src/index.js";
import { ViolationsSchema } from "../gen/buf/validate/validate_pb.js";

test("requestId: from the header, else from an internal error's message", () => {
  assert.equal(requestId(new ConnectError("internal error (request id 7QX2ABCD)", Code.Internal)), "7QX2ABCD");
  const withHeader = new ConnectError("internal error (request id A)", Code.Internal, { "X-Request-Id": "B" });
  assert.equal(requestId(withHeader), "B");
  assert.equal(requestId(new ConnectError("note not found", Code.NotFound)), undefined);
  assert.equal(requestId(new Error("internal error (request id A)")), undefined);
  assert.equal(requestId(undefined), undefined);
});

test("retryDelayMs: RetryInfo first, then Retry-After, for resource_exhausted only", () => {
  // google.rpc.RetryInfo{retry_delay: 1.5s}: field 1, a Duration.
  const duration = toBinary(DurationSchema, create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }));
  const retryInfo = new Uint8Array([0x0a, duration.length, ...duration]);
  const exhausted = (headers: HeadersInit, details: ConnectError["details"] = []) => {
    const err = new ConnectError("rate limit exceeded", Code.ResourceExhausted, headers);
    err.details = details;
    return err;
  };
  assert.equal(retryDelayMs(exhausted({ "Retry-After": "9" }, [{ type: "google.rpc.RetryInfo", value: retryInfo }])), 1500);
  assert.equal(retryDelayMs(exhausted({ "Retry-After": "9" })), 9000);
  const malformed = { type: "google.rpc.RetryInfo", value: new Uint8Array([0xff]) };
  assert.equal(retryDelayMs(exhausted({ "Retry-After": "9" }, [malformed])), 9000);
  const later = new Date(Date.now() + 60_000).toUTCString();
  const fromDate = retryDelayMs(exhausted({ "Retry-After": later }));
  assert.ok(fromDate !== undefined && fromDate > 50_000 && fromDate <= 60_000, `${fromDate}`);
  assert.equal(retryDelayMs(exhausted({})), undefined);
  assert.equal(retryDelayMs(new ConnectError("x", Code.Unavailable, { "Retry-After": "9" })), undefined);
  assert.equal(retryDelayMs("nope"), undefined);
});

test("fieldViolations: subscripts, and the first message of a field", () => {
  const err = new ConnectError("validation error", Code.InvalidArgument);
  const violations = create(ViolationsSchema, {
    violations: [
      { message: "first", field: { elements: [{ fieldName: "note" }, { fieldName: "title" }] } },
      { message: "second", field: { elements: [{ fieldName: "note" }, { fieldName: "title" }] } },
      { message: "bad item", field: { elements: [{ fieldName: "scopes", subscript: { case: "index", value: 2n } }] } },
      { message: "bad key", field: { elements: [{ fieldName: "labels", subscript: { case: "stringKey", value: "a b" } }] } },
      { message: "whole message" },
    ],
  });
  err.details = [{ type: ViolationsSchema.typeName, value: toBinary(ViolationsSchema, violations) }];
  assert.deepEqual(fieldViolations(err), {
    "note.title": "first",
    "scopes[2]": "bad item",
    'labels["a b"]': "bad key",
    "": "whole message",
  });
});
