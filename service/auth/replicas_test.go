package auth_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/internal/invalidation"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/internal/redistest"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/service/auth"
	"github.com/connectguard/guard/store"
)

// countingStore counts the signing-key reads of a replica.
type countingStore struct {
	*store.DB
	keyReads atomic.Int64
}

func (c *countingStore) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	c.keyReads.Add(1)
	return c.DB.SigningKeys(ctx)
}

// replica is a second auth.Service on the fixture's database and clock,
// as another server process would be.
type replica struct {
	svc   *auth.Service
	store *countingStore
}

func newReplica(t *testing.T, f *fixture) *replica {
	t.Helper()
	cs := &countingStore{DB: f.db}
	keys, err := auth.LoadKeys(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	tokens := token.New(keys, "guard", "guard-api", token.WithClock(f.clock.Now), token.WithTTL(15*time.Minute))
	hasher := password.NewHasher(password.WithParams(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}))
	svc := auth.New(cs, hasher, tokens, keys, lockout.NewMemory(lockout.Policies{}), slog.New(slog.DiscardHandler), auth.WithClock(f.clock.Now))
	return &replica{svc: svc, store: cs}
}

// resyncs runs a bus into svc and counts the subscriptions.
type resyncs struct {
	*auth.Service
	n atomic.Int64
}

func (r *resyncs) Resync(ctx context.Context) {
	r.n.Add(1)
	r.Service.Resync(ctx)
}

// run runs bus into svc until the test ends, and waits for its first
// subscription.
func run(t *testing.T, bus *invalidation.Redis, svc *auth.Service) {
	t.Helper()
	h := &resyncs{Service: svc}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bus.Run(ctx, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for h.n.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no subscription within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventually calls verify until it fails, for at most 10 s of real time.
func eventually(t *testing.T, what string, verify func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for verify() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still accepted after 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestChangesReachOtherReplicas: with the replicas' clock frozen, so that
// no cached state can expire, a change on A (a disabled user, a key
// rotation with revoke_previous) is refused on B: the message, not the
// expiry, did it. Without messages, B accepts until the second of expiry
// has passed, and then refuses: the documented bound.
func TestChangesReachOtherReplicas(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	ctx := context.Background()

	t.Run("user_state_pushed", func(t *testing.T) {
		t.Parallel()
		channel := redistest.Prefix(t, client) + "inv"
		busA := invalidation.NewRedis(client, channel)
		f := newFixture(t, auth.WithPublisher(busA)) // replica A
		run(t, busA, f.svc)
		b := newReplica(t, f)
		run(t, invalidation.NewRedis(client, channel), b.svc)
		tok := f.tokenLogin(t)
		if _, err := b.svc.VerifyToken(ctx, tok); err != nil { // cached on B
			t.Fatal(err)
		}
		if err := f.db.DisableUser(ctx, f.userID); err != nil {
			t.Fatal(err)
		}
		f.svc.InvalidateUser(ctx, f.userID) // what AdminService.DisableUser does
		eventually(t, "B after A disabled the user", func() error { _, err := b.svc.VerifyToken(ctx, tok); return err })
		if _, err := b.svc.VerifyToken(ctx, tok); !errors.Is(err, authn.ErrInvalid) {
			t.Errorf("B: %v, want authn.ErrInvalid", err)
		}
	})

	t.Run("user_state_without_messages_within_the_expiry", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		b := newReplica(t, f)
		tok := f.tokenLogin(t)
		if _, err := b.svc.VerifyToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := f.db.DisableUser(ctx, f.userID); err != nil {
			t.Fatal(err)
		}
		f.svc.InvalidateUser(ctx, f.userID) // no publisher: B is not told
		if _, err := b.svc.VerifyToken(ctx, tok); err != nil {
			t.Fatalf("B within the expiry, untold: %v, want its cached state (this test shows the bound)", err)
		}
		f.clock.Advance(time.Second)
		if _, err := b.svc.VerifyToken(ctx, tok); !errors.Is(err, authn.ErrInvalid) {
			t.Errorf("B a second after the change: %v, want authn.ErrInvalid", err)
		}
	})

	t.Run("key_rotation_pushed", func(t *testing.T) {
		t.Parallel()
		channel := redistest.Prefix(t, client) + "inv"
		busA := invalidation.NewRedis(client, channel)
		f := newFixture(t, auth.WithPublisher(busA))
		run(t, busA, f.svc)
		b := newReplica(t, f)
		run(t, invalidation.NewRedis(client, channel), b.svc)
		old := f.tokenLogin(t)
		if _, err := b.svc.VerifyToken(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RotateSigningKey(ctx, true); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B's old-key token after A revoked the key", func() error { _, err := b.svc.VerifyToken(ctx, old); return err })
		if _, err := b.svc.VerifyToken(ctx, f.tokenLogin(t)); err != nil {
			t.Errorf("B with a token of A's new key: %v", err)
		}
	})
}

// TestKeysReloadedWithoutMessages: untold of a rotation with
// revoke_previous (no Redis), a replica stops accepting the revoked key
// at its next reload of the keys, one second later at most (WatchKeys;
// real time, as its ticker runs on it). Its caches cannot expire: their
// clock is frozen.
func TestKeysReloadedWithoutMessages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := newReplica(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.svc.WatchKeys(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	old := f.tokenLogin(t)
	if _, err := b.svc.VerifyToken(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RotateSigningKey(ctx, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's old-key token after A revoked the key", func() error { _, err := b.svc.VerifyToken(ctx, old); return err })
	if _, err := b.svc.VerifyToken(ctx, old); !errors.Is(err, authn.ErrInvalid) {
		t.Errorf("B: %v, want authn.ErrInvalid", err)
	}
}

// TestUnknownKeyReload: a token of a key another replica made is
// accepted at once (one reload of the keys); tokens with made-up kids,
// however many at once, cause at most one reload per second, and are
// refused.
func TestUnknownKeyReload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := newReplica(t, f)
	ctx := context.Background()
	if _, err := f.svc.RotateSigningKey(ctx, false); err != nil { // B is not told
		t.Fatal(err)
	}
	reads := b.store.keyReads.Load()
	if _, err := b.svc.VerifyToken(ctx, f.tokenLogin(t)); err != nil {
		t.Fatalf("B with a token of the key A just made: %v, want accepted after a reload", err)
	}
	if got := b.store.keyReads.Load() - reads; got != 1 {
		t.Errorf("B read the keys %d times, want 1", got)
	}

	// An attacker's tokens, each with a kid of its own, signed by keys
	// nobody stored.
	forge := func() string {
		k, err := token.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := token.New(mustKeySet(t, k), "guard", "guard-api", token.WithClock(f.clock.Now)).Sign(f.userID, "s", nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	forged := make([]string, 50)
	for i := range forged {
		forged[i] = forge()
	}
	for round := range 2 {
		reads := b.store.keyReads.Load()
		var wg sync.WaitGroup
		for _, tok := range forged {
			wg.Go(func() {
				if _, err := b.svc.VerifyToken(ctx, tok); !errors.Is(err, authn.ErrInvalid) {
					t.Errorf("forged kid: %v, want authn.ErrInvalid", err)
				}
			})
		}
		wg.Wait()
		want := int64(1)
		if round == 0 {
			want = 0 // the reload above was less than a second ago
		}
		if got := b.store.keyReads.Load() - reads; got != want {
			t.Errorf("round %d: 50 forged kids made B read the keys %d times, want %d", round, got, want)
		}
		f.clock.Advance(time.Second)
	}
}

func mustKeySet(t *testing.T, k token.Key) *token.Keys {
	t.Helper()
	keys, err := token.NewKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
