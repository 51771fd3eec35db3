package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard"
	adminv1connect "github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/ownership"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/internal/config"
	"github.com/connectguard/guard/internal/detect"
	"github.com/connectguard/guard/internal/metrics"
	"github.com/connectguard/guard/service/auth"
	"github.com/connectguard/guard/store"
)

// auditTimeout bounds the write of a detection's audit row, which runs
// on the request path of the call that crossed the threshold.
const auditTimeout = 5 * time.Second

// newDetector returns the detector of suspicious activity: each
// detection (and each block, with -block-suspicious) becomes an audit
// event of type suspicious_activity, a warning in the log and, with m, a
// count in guard_suspicious_activity_total; beyond
// detect.DefaultMaxEvents a minute, over every source, only the count,
// and one event that sums them up.
func newDetector(cfg config.Config, db *store.DB, m *metrics.Metrics, log *slog.Logger) *detect.Detector {
	report := func(e detect.Event) {
		if e.Kind != "" && e.Blocked == 0 && m != nil {
			m.ObserveSuspicious(e.Kind)
		}
		if e.Suppressed { // beyond the minute's budget: summed up later
			return
		}
		ip := ""
		if e.Network.IsValid() {
			ip = e.Network.String()
		}
		log.Warn("suspicious activity", "kind", string(e.Kind), "user_id", e.UserID, "network", ip, "detail", e.Detail)
		ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
		defer cancel()
		err := db.RecordAuditEvent(ctx, store.AuditEvent{
			Type: string(audit.TypeSuspiciousActivity), Time: time.Now(), SubjectID: e.UserID,
			ClientIP: ip, Code: "ok", Detail: e.Detail, Count: e.Count,
		})
		if err != nil {
			log.Error("audit record lost", "type", audit.TypeSuspiciousActivity, "kind", string(e.Kind), "error", err)
		}
	}
	return detect.New(report, detect.WithBlock(cfg.BlockSuspicious))
}

// observers hands every observation to the metrics (nil for none) and to
// the detector.
type observers struct {
	m *metrics.Metrics
	d *detect.Detector
}

var (
	_ guard.Observer            = observers{}
	_ guard.SourceObserver      = observers{}
	_ ownership.RefusalObserver = observers{}
	_ auth.Observer             = observers{}
	_ auth.SourceObserver       = observers{}
)

func (o observers) ObserveCall(procedure, protocol string, code connect.Code, elapsed time.Duration) {
	if o.m != nil {
		o.m.ObserveCall(procedure, protocol, code, elapsed)
	}
}

func (o observers) ObserveAuthentication(method authn.Method, result string) {
	if o.m != nil {
		o.m.ObserveAuthentication(method, result)
	}
}

func (o observers) ObserveDenial(procedure, reason string) {
	if o.m != nil {
		o.m.ObserveDenial(procedure, reason)
	}
}

func (o observers) ObserveRateLimited(kind string) {
	if o.m != nil {
		o.m.ObserveRateLimited(kind)
	}
}

func (o observers) ObserveLogin(result string) {
	if o.m != nil {
		o.m.ObserveLogin(result)
	}
}

func (o observers) ObserveRefreshReuse() {
	if o.m != nil {
		o.m.ObserveRefreshReuse()
	}
}

func (o observers) ObserveLockoutStarted() {
	if o.m != nil {
		o.m.ObserveLockoutStarted()
	}
}

func (o observers) ObserveInvalidCredential(ctx context.Context, _ authn.Method) {
	ip, _ := clientip.From(ctx)
	o.d.InvalidCredential(ip)
}

func (o observers) ObserveRefusal(_ context.Context, p *authn.Principal, resource, id string) {
	o.d.Refused(p.UserID, resource, id)
}

func (o observers) ObserveLoginFailure(email string, ip netip.Addr) {
	o.d.LoginFailed(email, ip)
}

func (o observers) ObserveRefreshReuseBy(userID string, ip netip.Addr) {
	o.d.RefreshReused(userID, ip)
}

// errBlocked is the answer to a blocked source, as to a lockout:
// resource_exhausted with Retry-After.
func errBlocked(wait time.Duration) *connect.Error {
	return ratelimit.Exhausted("blocked after suspicious activity", wait)
}

// blocks refuses the calls of blocked users, right after authn
// (guard.WithAdmission).
type blocks struct{ d *detect.Detector }

func (b blocks) Admit(_ context.Context, p *authn.Principal) *connect.Error {
	if p == nil {
		return nil
	}
	if wait, ok := b.d.UserBlocked(p.UserID); ok {
		return errBlocked(wait)
	}
	return nil
}

// blockNetworks refuses every request from a blocked client network
// before any RPC work, credential checks included. It sits inside the
// HTTP layer (guard.Handler), which resolves the client IP.
func blockNetworks(d *detect.Detector, next http.Handler) http.Handler {
	errw := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _ := clientip.From(r.Context())
		if wait, ok := d.NetworkBlocked(ip); ok {
			_ = errw.Write(w, r, errBlocked(wait))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminCredentials is what AdminService drives: the auth service, and
// the detector whose user blocks UnlockUser lifts too.
type adminCredentials struct {
	*auth.Service
	d   *detect.Detector
	db  *store.DB
	log *slog.Logger
}

// UnblockUser implements admin.Unblocker: it lifts the user's block and,
// if there was one, records it.
func (c adminCredentials) UnblockUser(ctx context.Context, userID string) {
	if !c.d.UnblockUser(userID) {
		return
	}
	c.record(ctx, adminv1connect.AdminServiceUnlockUserProcedure, userID, "unblocked user "+userID)
}

// UnblockNetwork implements admin.NetworkUnblocker: it lifts the block
// of ip's network and, if there was one, records it.
func (c adminCredentials) UnblockNetwork(ctx context.Context, ip netip.Addr) bool {
	if !c.d.UnblockNetwork(ip) {
		return false
	}
	c.record(ctx, adminv1connect.AdminServiceUnblockNetworkProcedure, "", "unblocked network "+clientip.Network(ip).String())
	return true
}

// record writes the lift of a block to the audit trail, with the admin
// who lifted it.
func (c adminCredentials) record(ctx context.Context, procedure, subject, detail string) {
	ip, _ := clientip.From(ctx)
	actor := ""
	if p, ok := authn.PrincipalFrom(ctx); ok {
		actor = p.UserID
	}
	err := c.db.RecordAuditEvent(context.WithoutCancel(ctx), store.AuditEvent{
		Type: string(audit.TypeSuspiciousActivity), ActorID: actor, SubjectID: subject,
		Procedure: procedure, Code: "ok", ClientIP: ip.String(), RequestID: requestid.From(ctx), Detail: detail,
	})
	if err != nil {
		c.log.ErrorContext(ctx, "audit record lost", "type", audit.TypeSuspiciousActivity, "error", err)
	}
}
