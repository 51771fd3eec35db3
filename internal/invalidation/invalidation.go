// Package invalidation carries changes of security state from the replica
// that made them to every other replica of the server, so that each drops
// what it cached at once: a user's credential state after a logout, a
// password change, a role change, disabling, an API-key revocation or a
// reused refresh token; the signing keys after a rotation; a note and who
// may read it after an update, a share or a deletion (service/notes).
//
// # Push, with the cache's expiry as the backstop
//
// A replica caches a credential's state for at most a second (service/auth)
// and reloads the signing keys every second, so without any message a
// change reaches every replica within about a second. Messages make that
// immediate. They are pushed: a replica that receives none does nothing
// per request, so a request that changes no state (a cached token, no
// change pending) costs no round trip to Redis.
//
// Redis pub/sub delivers at most once, to the subscribers connected at the
// time: a replica cut off from Redis misses what was published meanwhile.
// So each time the subscription is made, at start and after every
// disconnection, Handler.Resync drops everything the replica cached and
// reloads the keys; and while the subscription is down, or when a
// publisher cannot reach Redis (its receivers do not know), the second of
// expiry still bounds how stale a replica can be. Worst case, for every
// kind of change: about a second after the change is committed (plus one
// database read under way), whatever Redis does; in the usual case, one
// pub/sub delivery (well under a millisecond on a LAN).
//
// # Why Redis pub/sub, not PostgreSQL LISTEN/NOTIFY
//
// Both push, both are at-most-once to connected listeners, and both need
// the same resync on reconnect. NOTIFY has one edge: sent inside the
// transaction that makes the change, it is delivered only if that commits.
// Redis wins here for now: the replicas already share it for rate limits
// and lockouts (one dependency, one set of timeouts and outage handling),
// the SQLite store has no NOTIFY, and a LISTEN needs a dedicated database
// connection per replica held open outside the pool. A LISTEN/NOTIFY bus
// plugs in behind the same two sides: a Publish method (the publisher
// interface of service/auth) and a Run that feeds a Handler.
//
// A message can only make a replica drop cached state or read the keys
// again, never accept anything: one forged by whoever can publish on the
// channel costs database reads, no more. (Whoever can write to the Redis
// can lift lockouts and rate limits anyway: keep it private.)
package invalidation

import (
	"context"
	"strings"
)

// Kind is what changed.
type Kind byte

const (
	// User: the credential state of a user changed (sessions, API keys,
	// roles, disabled): drop what is cached of the user.
	User Kind = 'u'
	// Keys: the signing keys changed: reload them.
	Keys Kind = 'k'
	// Note: a note or its shares changed: drop what is cached of it.
	Note Kind = 'n'
)

// Event is one change.
type Event struct {
	Kind Kind
	// UserID is the user whose state changed (User).
	UserID string
	// NoteID is the note that changed (Note).
	NoteID string
}

// Handlers applies each event, and each resync, to every handler in turn:
// one subscription for every service that caches.
type Handlers []Handler

// Apply implements Handler.
func (hs Handlers) Apply(ctx context.Context, e Event) {
	for _, h := range hs {
		h.Apply(ctx, e)
	}
}

// Resync implements Handler.
func (hs Handlers) Resync(ctx context.Context) {
	for _, h := range hs {
		h.Resync(ctx)
	}
}

// Handler applies what other replicas announce.
type Handler interface {
	// Apply applies one change another replica made.
	Apply(ctx context.Context, e Event)
	// Resync is called when changes may have been missed (a subscription
	// made anew, a message that does not parse): drop everything cached
	// and reload the keys.
	Resync(ctx context.Context)
}

// encode is the message of e from the replica origin:
// "<origin>|<kind>|<user or note id>".
func encode(origin string, e Event) string {
	return origin + "|" + string(e.Kind) + "|" + e.UserID + e.NoteID
}

// decode parses a message; ok is false for one this version does not
// know, which its receiver answers with a resync.
func decode(msg string) (origin string, e Event, ok bool) {
	origin, rest, ok1 := strings.Cut(msg, "|")
	kind, id, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 || len(kind) != 1 {
		return "", Event{}, false
	}
	e = Event{Kind: Kind(kind[0])}
	switch {
	case e.Kind == User && id != "":
		e.UserID = id
	case e.Kind == Keys && id == "":
	case e.Kind == Note && id != "":
		e.NoteID = id
	default:
		return "", Event{}, false
	}
	return origin, e, true
}
