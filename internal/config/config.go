// Package config reads the server's settings from flags and their GUARD_*
// environment twins, and refuses unsafe combinations with a message that
// says how to fix them.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/connectguard/guard/store"
	"github.com/redis/go-redis/v9"
)

// Config is every setting of the server.
type Config struct {
	Addr                   string
	TLSCert                string // PEM certificate chain; with TLSKey, serve HTTPS
	TLSKey                 string
	DB                     string // SQLite file path, or postgres:// URL
	AdminEmail             string
	AdminPassword          string // environment only: a flag would show in ps
	Issuer                 string
	Audience               string
	AccessTokenTTL         time.Duration
	SessionTTL             time.Duration
	IdleTimeout            time.Duration
	LockoutFailures        int // per account and client network
	AccountLockoutFailures int // per account, from every network
	LockoutWindow          time.Duration
	LockoutDuration        time.Duration
	LockoutMax             time.Duration
	IPLockoutFailures      int
	BlockSuspicious        time.Duration // block the source of a detection (internal/detect); 0 for none
	CORSOrigins            []string
	TrustedProxies         []netip.Prefix
	IPRateLimit            int
	IPRateWindow           time.Duration
	UserRateLimit          int
	UserRateWindow         time.Duration
	MaxBodyBytes           int
	Reflection             bool
	LogLevel               slog.Level
	LogFormat              string
	ShutdownTimeout        time.Duration
	ReadTimeout            time.Duration // a whole request, headers and body
	Redis                  string        // URL of the state replicas share; empty keeps it in this process
	RedisOnFailure         string        // rate limits: local, open or closed
	RedisPrefix            string        // of the rate-limit keys in Redis
	RedisLockoutOnFailure  string        // lockouts: local or closed
	RedisLockoutPrefix     string        // of the lockout keys in Redis
	RedisChannel           string        // pub/sub channel of the invalidations
	PprofAddr              string        // private pprof and expvar listener; empty for none
	PprofAllowRemote       bool          // let PprofAddr be beyond loopback
	MetricsAddr            string        // private Prometheus /metrics listener; empty for none
	MetricsAllowRemote     bool          // let MetricsAddr be beyond loopback
	// AuditRetention is how long audit events are kept; 0 keeps them forever.
	AuditRetention time.Duration
	// Bare serves the handlers with no security at all, for the load
	// harness to compare against; it exists only in guardload builds.
	Bare bool
}

// DefaultAddr is the listen address without -addr: loopback, so that a
// first start exposes nothing.
const DefaultAddr = "127.0.0.1:8080"

// Parse reads args (without the program name) and the environment through
// getenv. An environment variable sets a flag's default; a flag on the
// command line wins. Output of -h goes to out; -h returns flag.ErrHelp.
func Parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("guard", flag.ContinueOnError)
	fs.SetOutput(out)
	var origins, proxies, level string
	var envErrs []error
	env := func(flagName string) string {
		return "GUARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
	}
	str := func(p *string, name, def, usage string) {
		if v := getenv(env(name)); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage+" ("+env(name)+")")
	}
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		if v := getenv(env(name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s: %w", env(name), err))
			}
			def = d
		}
		fs.DurationVar(p, name, def, usage+" ("+env(name)+")")
	}
	num := func(p *int, name string, def int, usage string) {
		if v := getenv(env(name)); v != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s: %q is not a number", env(name), v))
			}
			def = n
		}
		fs.IntVar(p, name, def, usage+" ("+env(name)+")")
	}
	boolean := func(p *bool, name string, def bool, usage string) {
		switch v := getenv(env(name)); v {
		case "":
		case "1", "true":
			def = true
		case "0", "false":
			def = false
		default:
			envErrs = append(envErrs, fmt.Errorf("%s: want true or false, got %q", env(name), v))
		}
		fs.BoolVar(p, name, def, usage+" ("+env(name)+")")
	}

	str(&c.Addr, "addr", DefaultAddr, "listen address")
	str(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS, HTTP/2 by ALPN; needs -tls-key")
	str(&c.TLSKey, "tls-key", "", "PEM private key file of -tls-cert")
	str(&c.DB, "db", "./data/guard.db", "SQLite database file, created if missing, or the postgres:// URL of a PostgreSQL database that several replicas share (?search_path=schema picks its schema; a password belongs in GUARD_DB or PGPASSWORD, not the flag)")
	str(&c.AdminEmail, "admin-email", "admin@example.com", "email of the admin created on first start")
	str(&c.Issuer, "issuer", "guard", "access token issuer (iss)")
	str(&c.Audience, "audience", "guard-api", "access token audience (aud)")
	dur(&c.AccessTokenTTL, "access-token-ttl", 15*time.Minute, "access token lifetime")
	dur(&c.SessionTTL, "session-ttl", 7*24*time.Hour, "absolute session lifetime")
	dur(&c.IdleTimeout, "session-idle-timeout", 30*time.Minute, "a cookie session unused this long ends")
	num(&c.LockoutFailures, "lockout-failures", 5, "failed logins at one account from one client network (IPv6: /64) within -lockout-window that lock the account from that network")
	num(&c.AccountLockoutFailures, "account-lockout-failures", 50, "failed logins at one account from all networks within -lockout-window that lock it from every network it has not logged in from in 30 days")
	dur(&c.LockoutWindow, "lockout-window", 15*time.Minute, "window in which failed logins are counted")
	dur(&c.LockoutDuration, "lockout-duration", 15*time.Minute, "first lockout; doubles with each repeated lockout")
	dur(&c.LockoutMax, "lockout-max", 24*time.Hour, "longest lockout")
	num(&c.IPLockoutFailures, "ip-lockout-failures", 20, "failed logins per client IP within -lockout-window that lock the IP")
	dur(&c.BlockSuspicious, "block-suspicious", 0, "block the source of detected suspicious activity for this long (the client network for credential stuffing and invalid-credential bursts, the user for enumeration; refresh reuse blocks nothing); 0 blocks nothing")
	str(&origins, "cors-origins", "", "comma-separated browser origins allowed to call the API, such as https://app.example.com")
	str(&proxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed")
	num(&c.IPRateLimit, "ip-rate-limit", 600, "requests per client IP per -ip-rate-window, for all endpoints")
	dur(&c.IPRateWindow, "ip-rate-window", time.Minute, "window of -ip-rate-limit")
	num(&c.UserRateLimit, "user-rate-limit", 1200, "calls per authenticated user per -user-rate-window, over all methods and credentials")
	dur(&c.UserRateWindow, "user-rate-window", time.Minute, "window of -user-rate-limit")
	num(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest request message accepted, in bytes")
	boolean(&c.Reflection, "reflection", false, "development setting: serve gRPC reflection, which describes every API (AdminService too) to anonymous callers")
	str(&level, "log-level", "info", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "text", "text or json")
	dur(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may finish on SIGINT/SIGTERM")
	dur(&c.ReadTimeout, "read-timeout", 30*time.Second, "how long a client may take to send a whole request; slower ones get deadline_exceeded")
	str(&c.Redis, "redis", "", "Redis URL, such as redis://127.0.0.1:6379/0, to share rate limits, lockouts and invalidations with every replica; empty keeps them in this process (a password belongs in GUARD_REDIS, not the flag)")
	str(&c.RedisOnFailure, "redis-on-failure", "local", "what a replica does with rate limits while Redis fails: local (counts alone: limits hold per replica), open (admits every call) or closed (refuses rate-limited calls)")
	str(&c.RedisPrefix, "redis-prefix", "guard:rl:", "prefix of the rate-limit keys in Redis")
	str(&c.RedisLockoutOnFailure, "redis-lockout-on-failure", "local", "what a replica does with login lockouts while Redis fails: local (counts alone: thresholds hold per replica) or closed (refuses logins)")
	str(&c.RedisLockoutPrefix, "redis-lockout-prefix", "guard:lockout:", "prefix of the lockout keys in Redis")
	str(&c.RedisChannel, "redis-channel", "guard:invalidate", "Redis pub/sub channel on which replicas announce credential and signing-key changes (not scoped by database number: one per deployment)")
	dur(&c.AuditRetention, "audit-retention", 0, "audit events older than this are deleted (at start and hourly; the chain stays verifiable); 0 keeps them forever")
	fs.Usage = func() {
		fmt.Fprintln(out, "Usage: guard [flags]\n\nEvery flag can also be set by the environment variable named after it.\nGUARD_ADMIN_PASSWORD (environment only) sets the first admin's password;\nwithout it a random one is printed once.\n\nFlags:")
		fs.PrintDefaults()
	}
	str(&c.PprofAddr, "pprof-addr", "", "address of a private listener serving /debug/pprof/ and /debug/vars (expvar) for profiling; loopback only unless -pprof-allow-remote; empty for none")
	boolean(&c.PprofAllowRemote, "pprof-allow-remote", false, "let -pprof-addr listen beyond loopback: profiles reveal memory contents and cost CPU, so anyone who can reach it must be trusted")
	str(&c.MetricsAddr, "metrics-addr", "", "address of a private listener serving Prometheus metrics on /metrics; loopback only unless -metrics-allow-remote; empty for none")
	boolean(&c.MetricsAllowRemote, "metrics-allow-remote", false, "let -metrics-addr listen beyond loopback: metrics show who is attacked and how (procedures, refusals, sessions), so only the scrapers should reach it")
	if bareAllowed {
		fs.BoolVar(&c.Bare, "bare", false, "load harness only: serve the handlers with no security")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := errors.Join(envErrs...); err != nil {
		return Config{}, err
	}
	c.AdminPassword = getenv("GUARD_ADMIN_PASSWORD")
	// A password on the command line shows in ps to every local user.
	var flagErrs []error
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "redis" && f.Name != "db" {
			return
		}
		if u, err := url.Parse(f.Value.String()); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				flagErrs = append(flagErrs, fmt.Errorf("-%s: the URL holds a password, which would show in ps; set the URL in %s instead", f.Name, env(f.Name)))
			}
		}
	})
	if err := errors.Join(flagErrs...); err != nil {
		return Config{}, err
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return Config{}, fmt.Errorf("-log-level: %w", err)
	}
	c.CORSOrigins = splitList(origins)
	for _, p := range splitList(proxies) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			if ip, ierr := netip.ParseAddr(p); ierr == nil {
				prefix = netip.PrefixFrom(ip, ip.BitLen())
			} else {
				return Config{}, fmt.Errorf("-trusted-proxies: %q is neither a CIDR nor an IP", p)
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	return c, c.Validate()
}

// Validate refuses settings that are unsafe or cannot work.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, o := range c.CORSOrigins {
		if o == "*" || strings.Contains(o, "*") {
			bad("-cors-origins: wildcards are refused because browsers send credentials (session cookies); list each origin, such as https://app.example.com")
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			bad("-cors-origins: %q is not an origin; write scheme://host[:port], such as https://app.example.com", o)
		}
	}
	for _, p := range c.TrustedProxies {
		if p.Bits() == 0 {
			bad("-trusted-proxies: %s trusts every address, which lets any client choose its IP; list your proxies' addresses", p)
		}
	}
	if c.AccessTokenTTL < 5*time.Second || c.AccessTokenTTL > 24*time.Hour {
		bad("-access-token-ttl: %s is outside 5s..24h", c.AccessTokenTTL)
	}
	if c.SessionTTL < c.AccessTokenTTL {
		bad("-session-ttl: %s is shorter than -access-token-ttl", c.SessionTTL)
	}
	if c.IdleTimeout < time.Minute {
		bad("-session-idle-timeout: %s is shorter than 1m", c.IdleTimeout)
	}
	if c.LockoutFailures < 1 || c.AccountLockoutFailures < 1 || c.IPLockoutFailures < 1 || c.LockoutWindow <= 0 || c.LockoutDuration <= 0 || c.LockoutMax < c.LockoutDuration {
		bad("-lockout-*: failures must be at least 1, durations positive, -lockout-max at least -lockout-duration")
	}
	if c.BlockSuspicious < 0 {
		bad("-block-suspicious: must be 0 (no block) or positive")
	}
	if c.AccountLockoutFailures < c.LockoutFailures {
		bad("-account-lockout-failures: %d is below -lockout-failures %d; the account-wide ceiling must be the higher one, or one guesser locks the owner out", c.AccountLockoutFailures, c.LockoutFailures)
	}
	if c.IPRateLimit < 1 || c.IPRateWindow < time.Second {
		bad("-ip-rate-limit must be positive and -ip-rate-window at least 1s")
	}
	if c.UserRateLimit < 1 || c.UserRateWindow < time.Second {
		bad("-user-rate-limit must be positive and -user-rate-window at least 1s")
	}
	if c.Redis != "" {
		// url.Parse's message would quote the URL, password included.
		if _, err := url.Parse(c.Redis); err != nil {
			bad("-redis: the URL does not parse; write redis://[user:password@]host:port/db, such as redis://127.0.0.1:6379/0")
		} else if _, err := redis.ParseURL(c.Redis); err != nil {
			bad("-redis: %v; write redis://[user:password@]host:port/db (rediss:// for TLS), such as redis://127.0.0.1:6379/0", err)
		}
	}
	switch c.RedisOnFailure {
	case "local", "open", "closed":
	default:
		bad("-redis-on-failure: want local (each replica counts alone), open (admit) or closed (refuse), got %q", c.RedisOnFailure)
	}
	switch c.RedisLockoutOnFailure {
	case "local", "closed":
	default:
		bad("-redis-lockout-on-failure: want local (each replica counts alone) or closed (refuse logins), got %q; there is no open: it would let anyone guess passwords during an outage", c.RedisLockoutOnFailure)
	}
	if c.RedisLockoutPrefix == "" || c.RedisLockoutPrefix == c.RedisPrefix {
		bad("-redis-lockout-prefix: %q must be set and differ from -redis-prefix", c.RedisLockoutPrefix)
	}
	if c.RedisChannel == "" {
		bad("-redis-channel must not be empty")
	}
	if c.AuditRetention != 0 && c.AuditRetention < 24*time.Hour {
		bad("-audit-retention: %s is under 24h; use 0 to keep audit events forever", c.AuditRetention)
	}
	if c.ReadTimeout < time.Second || c.ReadTimeout > 10*time.Minute {
		bad("-read-timeout: %s is outside 1s..10m", c.ReadTimeout)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		bad("-max-body-bytes: %d is outside 1024..67108864", c.MaxBodyBytes)
	}
	if c.Issuer == "" || c.Audience == "" {
		bad("-issuer and -audience must not be empty")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("-log-format: want text or json, got %q", c.LogFormat)
	}
	switch {
	case c.DB == "":
		bad("-db must not be empty")
	case store.IsPostgres(c.DB):
		// url.Parse's message would quote the URL, password included.
		if _, err := url.Parse(c.DB); err != nil {
			bad("-db: the URL does not parse; write postgres://[user@]host:port/database[?sslmode=...&search_path=schema], such as postgres://guard@127.0.0.1:5432/guard")
		}
	}
	if c.PprofAddr != "" && !c.PprofAllowRemote && !loopback(c.PprofAddr) {
		bad("-pprof-addr: %s is not a loopback address; profiles reveal memory contents (tokens, keys) to whoever reads them: listen on 127.0.0.1, or set -pprof-allow-remote if only trusted hosts can reach it", c.PprofAddr)
	}
	if c.MetricsAddr != "" && !c.MetricsAllowRemote && !loopback(c.MetricsAddr) {
		bad("-metrics-addr: %s is not a loopback address; metrics show which procedures are attacked, refused and how often: listen on 127.0.0.1, or set -metrics-allow-remote if only your scrapers can reach it", c.MetricsAddr)
	}
	if c.MetricsAddr != "" && (c.MetricsAddr == c.Addr || c.MetricsAddr == c.PprofAddr) && !strings.HasSuffix(c.MetricsAddr, ":0") {
		bad("-metrics-addr: %s is also -addr or -pprof-addr; metrics get a listener of their own", c.MetricsAddr)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("-tls-cert and -tls-key: set both to serve HTTPS, or neither")
	}
	if c.TLSCert == "" && len(c.TrustedProxies) == 0 && !loopback(c.Addr) {
		bad("-addr: %s is not a loopback address, and without TLS every token, password and cookie would cross the network in clear text: set -tls-cert and -tls-key, or put a TLS-terminating proxy in front and list it in -trusted-proxies", c.Addr)
	}
	return errors.Join(errs...)
}

// CleartextExposed reports whether the server listens beyond loopback
// without TLS of its own, relying on a proxy in front for it.
func (c *Config) CleartextExposed() bool {
	return c.TLSCert == "" && !loopback(c.Addr)
}

// loopback reports whether the listen address addr accepts connections
// from this machine only. An empty host listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
