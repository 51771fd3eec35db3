package openapi

import "github.com/connectguard/guard/interceptors/policy"

// Names of the shared error responses in components/responses.
const (
	respInvalidArgument   = "InvalidArgument"
	respUnauthenticated   = "Unauthenticated"
	respPermissionDenied  = "PermissionDenied"
	respNotFound          = "NotFound"
	respResourceExhausted = "ResourceExhausted"
	respInternal          = "Internal"
)

// responses are an operation's responses: ok, and the errors its policy
// and input make possible. Every operation can be refused as malformed
// (the REST gateway refuses a query parameter the method does not have,
// or a body that is not JSON, on every route), can be rate limited (there
// is a per-IP limit on every request) and can fail internally.
func responses(ok obj, p *policy.Rule, namesResource bool) obj {
	out := obj{
		"200": ok,
		"400": errorRef(respInvalidArgument),
		"429": errorRef(respResourceExhausted),
		"500": errorRef(respInternal),
	}
	if !p.Public {
		out["401"] = errorRef(respUnauthenticated)
		out["403"] = errorRef(respPermissionDenied)
	}
	if p.Ownership != nil || namesResource {
		out["404"] = errorRef(respNotFound)
	}
	return out
}

func errorRef(name string) obj {
	return obj{"$ref": "#/components/responses/" + name}
}

// errorResponses are the shared error responses, each a Status body.
func errorResponses() obj {
	body := obj{"application/json": obj{"schema": obj{"$ref": refPrefix + statusSchema}}}
	resp := func(description string) obj {
		return obj{"description": description, "content": body}
	}
	exhausted := resp("resource_exhausted (code 8): over a rate limit (per client IP on every request, " +
		"per user, or the method's own), a login lockout, or a request body over the size limit. " +
		"Retry after Retry-After seconds; details carry a google.rpc.RetryInfo (schema google.rpc.RetryInfo).")
	exhausted["headers"] = obj{
		"Retry-After": header("Seconds to wait before retrying, rounded up.", obj{"type": "integer", "minimum": 0}),
		"RateLimit-Policy": header(`The quotas that govern the call, as structured fields, such as "ip";q=600;w=60.`,
			obj{"type": "string"}),
		"RateLimit": header(`What is left of each quota, such as "ip";r=0;t=12.`, obj{"type": "string"}),
	}
	unauthenticated := resp("unauthenticated (code 16): the credential is missing, malformed, expired or revoked.")
	unauthenticated["headers"] = obj{
		"WWW-Authenticate": header("The Bearer challenge (RFC 6750).", obj{"type": "string"}),
	}
	return obj{
		respInvalidArgument: resp("invalid_argument (code 3): the request is malformed or breaks a validation rule; " +
			"details carry a buf.validate.Violations (schema buf.validate.Violations) naming each field and rule."),
		respUnauthenticated:   unauthenticated,
		respPermissionDenied:  resp("permission_denied (code 7): the caller lacks a role, an API key lacks a scope, or the caller may see the resource but not change it."),
		respNotFound:          resp("not_found (code 5): the resource does not exist or the caller may not see it; the two are not told apart."),
		respResourceExhausted: exhausted,
		respInternal:          resp("internal (code 13): a failure on the server; the message is generic and carries a request id for the logs."),
	}
}

func header(description string, schema obj) obj {
	return obj{"description": description, "schema": schema}
}

// securitySchemes are the three kinds of credential a caller can present.
func securitySchemes() obj {
	return obj{
		"bearer": obj{
			"type":         "http",
			"scheme":       "bearer",
			"bearerFormat": "JWT",
			"description":  "An access token from Login or Refresh, in Authorization: Bearer <token>. A call carries one credential: more than one is refused.",
		},
		"apiKey": obj{
			"type": "apiKey",
			"in":   "header",
			"name": "X-API-Key",
			"description": "An API key from CreateAPIKey (it starts with gk_), in X-API-Key; it is also accepted " +
				"as a bearer token in Authorization. Scopes bind API keys only: a key must carry every scope an operation lists.",
		},
		"cookie": obj{
			"type": "apiKey",
			"in":   "cookie",
			"name": "__Host-guard_session",
			"description": "The HttpOnly session cookie that Login sets with useCookie. Calls with the cookie from " +
				"other origins are refused unless CORS allows that origin (-cors-origins), and so are form and " +
				"text/plain bodies.",
		},
	}
}
