package guard

import (
	"net/http"

	"github.com/connectguard/guard/internal/outcome"
)

// ProtocolREST names calls that reach the chain through a REST gateway,
// in the access log and to the Observer.
const ProtocolREST = "rest"

// Translated wraps gateway, a handler that translates calls of protocol
// (such as ProtocolREST: connectrpc.com/vanguard serving the
// google.api.http routes) into calls to the handlers of the chain. The
// access log and the Observer name protocol for those calls rather than
// the protocol the gateway speaks to the handlers; the chain decides them
// as it decides any other call. Put it inside Handler.
func Translated(protocol string, gateway http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gateway.ServeHTTP(w, r.WithContext(outcome.WithTranslated(r.Context(), protocol)))
	})
}
