package config_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/config"
)

// env is a fake environment.
type env map[string]string

func (e env) get(name string) string { return e[name] }

func parse(t *testing.T, args []string, e env) (config.Config, error) {
	t.Helper()
	return config.Parse(args, e.get, io.Discard)
}

func mustParse(t *testing.T, args []string, e env) config.Config {
	t.Helper()
	c, err := parse(t, args, e)
	if err != nil {
		t.Fatalf("Parse(%q, %v) error = %v, want nil", args, e, err)
	}
	return c
}

func TestParse_defaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, nil, env{})
	tests := []struct {
		name      string
		got, want any
	}{
		{"addr", c.Addr, "127.0.0.1:8080"},
		{"db", c.DB, "./data/guard.db"},
		{"reflection", c.Reflection, false},
		{"tls", c.TLSCert + c.TLSKey, ""},
		{"admin_email", c.AdminEmail, "admin@example.com"},
		{"admin_password", c.AdminPassword, ""},
		{"issuer", c.Issuer, "guard"},
		{"audience", c.Audience, "guard-api"},
		{"access_token_ttl", c.AccessTokenTTL, 15 * time.Minute},
		{"session_ttl", c.SessionTTL, 7 * 24 * time.Hour},
		{"ip_rate_limit", c.IPRateLimit, 600},
		{"ip_rate_window", c.IPRateWindow, time.Minute},
		{"max_body_bytes", c.MaxBodyBytes, 1 << 20},
		{"log_level", c.LogLevel, slog.LevelInfo},
		{"log_format", c.LogFormat, "text"},
		{"shutdown_timeout", c.ShutdownTimeout, 10 * time.Second},
		{"cors_origins", len(c.CORSOrigins), 0},
		{"trusted_proxies", len(c.TrustedProxies), 0},
		{"redis", c.Redis, ""},
		{"redis_on_failure", c.RedisOnFailure, "local"},
		{"redis_prefix", c.RedisPrefix, "guard:rl:"},
		{"redis_lockout_on_failure", c.RedisLockoutOnFailure, "local"},
		{"redis_lockout_prefix", c.RedisLockoutPrefix, "guard:lockout:"},
		{"redis_channel", c.RedisChannel, "guard:invalidate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestParse_environment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   env
		check func(c config.Config) (got, want any)
	}{
		{"addr", env{"GUARD_ADDR": "127.0.0.2:9000"}, func(c config.Config) (any, any) { return c.Addr, "127.0.0.2:9000" }},
		{"addr_public_behind_proxy", env{"GUARD_ADDR": "0.0.0.0:9000", "GUARD_TRUSTED_PROXIES": "10.0.0.1"}, func(c config.Config) (any, any) { return c.CleartextExposed(), true }},
		{"addr_public_with_tls", env{"GUARD_ADDR": ":8443", "GUARD_TLS_CERT": "c.pem", "GUARD_TLS_KEY": "k.pem"}, func(c config.Config) (any, any) { return c.CleartextExposed(), false }},
		{"addr_localhost", env{"GUARD_ADDR": "localhost:8080"}, func(c config.Config) (any, any) { return c.CleartextExposed(), false }},
		{"addr_ipv6_loopback", env{"GUARD_ADDR": "[::1]:8080"}, func(c config.Config) (any, any) { return c.CleartextExposed(), false }},
		{"db", env{"GUARD_DB": "/var/lib/guard.db"}, func(c config.Config) (any, any) { return c.DB, "/var/lib/guard.db" }},
		{"admin_email", env{"GUARD_ADMIN_EMAIL": "root@example.org"}, func(c config.Config) (any, any) { return c.AdminEmail, "root@example.org" }},
		{"admin_password", env{"GUARD_ADMIN_PASSWORD": "s3cret-passw0rd"}, func(c config.Config) (any, any) { return c.AdminPassword, "s3cret-passw0rd" }},
		{"access_token_ttl", env{"GUARD_ACCESS_TOKEN_TTL": "5m"}, func(c config.Config) (any, any) { return c.AccessTokenTTL, 5 * time.Minute }},
		{"session_ttl", env{"GUARD_SESSION_TTL": "48h"}, func(c config.Config) (any, any) { return c.SessionTTL, 48 * time.Hour }},
		{"ip_rate_limit", env{"GUARD_IP_RATE_LIMIT": "42"}, func(c config.Config) (any, any) { return c.IPRateLimit, 42 }},
		{"ip_rate_window", env{"GUARD_IP_RATE_WINDOW": "30s"}, func(c config.Config) (any, any) { return c.IPRateWindow, 30 * time.Second }},
		{"max_body_bytes", env{"GUARD_MAX_BODY_BYTES": "4096"}, func(c config.Config) (any, any) { return c.MaxBodyBytes, 4096 }},
		{"reflection_true", env{"GUARD_REFLECTION": "true"}, func(c config.Config) (any, any) { return c.Reflection, true }},
		{"reflection_1", env{"GUARD_REFLECTION": "1"}, func(c config.Config) (any, any) { return c.Reflection, true }},
		{"log_level", env{"GUARD_LOG_LEVEL": "debug"}, func(c config.Config) (any, any) { return c.LogLevel, slog.LevelDebug }},
		{"log_format", env{"GUARD_LOG_FORMAT": "json"}, func(c config.Config) (any, any) { return c.LogFormat, "json" }},
		{"shutdown_timeout", env{"GUARD_SHUTDOWN_TIMEOUT": "3s"}, func(c config.Config) (any, any) { return c.ShutdownTimeout, 3 * time.Second }},
		{"redis", env{"GUARD_REDIS": "redis://10.0.0.5:6379/2"}, func(c config.Config) (any, any) { return c.Redis, "redis://10.0.0.5:6379/2" }},
		{"db_postgres_password_in_env", env{"GUARD_DB": "postgres://guard:s3cret@db.internal:5432/guard?sslmode=verify-full"}, func(c config.Config) (any, any) {
			return c.DB, "postgres://guard:s3cret@db.internal:5432/guard?sslmode=verify-full"
		}},
		{"redis_password_in_env", env{"GUARD_REDIS": "rediss://guard:s3cret@redis.internal:6380/0"}, func(c config.Config) (any, any) {
			return c.Redis, "rediss://guard:s3cret@redis.internal:6380/0"
		}},
		{"redis_on_failure", env{"GUARD_REDIS_ON_FAILURE": "closed"}, func(c config.Config) (any, any) { return c.RedisOnFailure, "closed" }},
		{"redis_prefix", env{"GUARD_REDIS_PREFIX": "{notes}:rl:"}, func(c config.Config) (any, any) { return c.RedisPrefix, "{notes}:rl:" }},
		{"redis_lockout_on_failure", env{"GUARD_REDIS_LOCKOUT_ON_FAILURE": "closed"}, func(c config.Config) (any, any) { return c.RedisLockoutOnFailure, "closed" }},
		{"redis_lockout_prefix", env{"GUARD_REDIS_LOCKOUT_PREFIX": "{notes}:lo:"}, func(c config.Config) (any, any) { return c.RedisLockoutPrefix, "{notes}:lo:" }},
		{"redis_channel", env{"GUARD_REDIS_CHANNEL": "notes:inv"}, func(c config.Config) (any, any) { return c.RedisChannel, "notes:inv" }},
		{"cors_origins", env{"GUARD_CORS_ORIGINS": "https://app.example.com, http://localhost:5173"}, func(c config.Config) (any, any) {
			return strings.Join(c.CORSOrigins, " "), "https://app.example.com http://localhost:5173"
		}},
		{"trusted_proxies", env{"GUARD_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,fd00::/8, 10.1.2.3/16"}, func(c config.Config) (any, any) {
			want := []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("192.168.1.7/32"),
				netip.MustParsePrefix("fd00::/8"),
				netip.MustParsePrefix("10.1.0.0/16"), // masked
			}
			return slices.Equal(c.TrustedProxies, want), true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, want := tt.check(mustParse(t, nil, tt.env))
			if got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestParse_flagBeatsEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		env   env
		check func(c config.Config) (got, want any)
	}{
		{"addr", []string{"-addr", "127.0.0.1:9999"}, env{"GUARD_ADDR": "0.0.0.0:1"}, func(c config.Config) (any, any) { return c.Addr, "127.0.0.1:9999" }},
		{"duration", []string{"-access-token-ttl=2m"}, env{"GUARD_ACCESS_TOKEN_TTL": "30m"}, func(c config.Config) (any, any) { return c.AccessTokenTTL, 2 * time.Minute }},
		{"number", []string{"-ip-rate-limit", "7"}, env{"GUARD_IP_RATE_LIMIT": "99"}, func(c config.Config) (any, any) { return c.IPRateLimit, 7 }},
		{"bool", []string{"-reflection=false"}, env{"GUARD_REFLECTION": "true"}, func(c config.Config) (any, any) { return c.Reflection, false }},
		{"list", []string{"-cors-origins", "https://b.example"}, env{"GUARD_CORS_ORIGINS": "https://a.example"}, func(c config.Config) (any, any) {
			return strings.Join(c.CORSOrigins, " "), "https://b.example"
		}},
		{"flag_clears_env", []string{"-trusted-proxies="}, env{"GUARD_TRUSTED_PROXIES": "10.0.0.0/8"}, func(c config.Config) (any, any) { return len(c.TrustedProxies), 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, want := tt.check(mustParse(t, tt.args, tt.env))
			if got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestParse_adminPasswordIsEnvironmentOnly(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := config.Parse([]string{"-admin-password", "hunter2hunter2"}, env{}.get, &out)
	if err == nil {
		t.Fatal("Parse(-admin-password) error = nil, want an error: a password on the command line shows in ps")
	}
	if !strings.Contains(err.Error(), "admin-password") {
		t.Errorf("Parse(-admin-password) error = %q, want it to name the flag", err)
	}
	if strings.Contains(err.Error(), "hunter2hunter2") || strings.Contains(out.String(), "hunter2hunter2") {
		t.Errorf("Parse(-admin-password) echoed the password: error %q, output %q", err, out.String())
	}
}

func TestParse_refuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  env
		want []string // substrings of the error
	}{
		{"cors_star", []string{"-cors-origins", "*"}, nil, []string{"-cors-origins", "wildcard", "https://app.example.com"}},
		{"cors_star_among_others", []string{"-cors-origins", "https://a.example,*"}, nil, []string{"wildcard"}},
		{"cors_subdomain_wildcard", []string{"-cors-origins", "https://*.example.com"}, nil, []string{"wildcard"}},
		{"cors_star_from_env", nil, env{"GUARD_CORS_ORIGINS": "*"}, []string{"wildcard"}},
		{"cors_origin_with_path", []string{"-cors-origins", "https://app.example.com/login"}, nil, []string{`"https://app.example.com/login" is not an origin`, "scheme://host"}},
		{"cors_origin_trailing_slash", []string{"-cors-origins", "https://app.example.com/"}, nil, []string{"is not an origin"}},
		{"cors_origin_with_query", []string{"-cors-origins", "https://app.example.com?x=1"}, nil, []string{"is not an origin"}},
		{"cors_origin_without_scheme", []string{"-cors-origins", "app.example.com"}, nil, []string{"is not an origin"}},
		{"cors_origin_other_scheme", []string{"-cors-origins", "ftp://app.example.com"}, nil, []string{"is not an origin"}},
		{"cors_origin_with_user", []string{"-cors-origins", "https://u:p@app.example.com"}, nil, []string{"is not an origin"}},
		{"trust_everyone_v4", []string{"-trusted-proxies", "0.0.0.0/0"}, nil, []string{"-trusted-proxies", "every address"}},
		{"trust_everyone_v6", []string{"-trusted-proxies", "10.0.0.0/8,::/0"}, nil, []string{"every address"}},
		{"trust_everyone_unmasked", []string{"-trusted-proxies", "203.0.113.9/0"}, nil, []string{"every address"}},
		{"trusted_proxy_garbage", []string{"-trusted-proxies", "proxy.internal"}, nil, []string{"-trusted-proxies", `"proxy.internal"`}},
		{"bad_duration_in_env", nil, env{"GUARD_ACCESS_TOKEN_TTL": "fortnight"}, []string{"GUARD_ACCESS_TOKEN_TTL"}},
		{"bad_duration_flag", []string{"-session-ttl", "forever"}, nil, []string{"session-ttl"}},
		{"bad_number_in_env", nil, env{"GUARD_IP_RATE_LIMIT": "lots"}, []string{"GUARD_IP_RATE_LIMIT", "not a number"}},
		{"bad_bool_in_env", nil, env{"GUARD_REFLECTION": "yes"}, []string{"GUARD_REFLECTION", "true or false"}},
		{"access_ttl_too_short", []string{"-access-token-ttl", "4s"}, nil, []string{"-access-token-ttl", "4s", "5s..24h"}},
		{"access_ttl_too_long", []string{"-access-token-ttl", "25h", "-session-ttl", "48h"}, nil, []string{"-access-token-ttl", "5s..24h"}},
		{"session_shorter_than_access", []string{"-session-ttl", "5m"}, nil, []string{"-session-ttl", "shorter"}},
		{"body_too_small", []string{"-max-body-bytes", "10"}, nil, []string{"-max-body-bytes", "10", "1024"}},
		{"body_too_large", []string{"-max-body-bytes", "1000000000"}, nil, []string{"-max-body-bytes"}},
		{"ip_rate_limit_zero", []string{"-ip-rate-limit", "0"}, nil, []string{"-ip-rate-limit", "positive"}},
		{"ip_rate_window_zero", []string{"-ip-rate-window", "0s"}, nil, []string{"-ip-rate-window", "positive"}},
		{"empty_issuer", []string{"-issuer", ""}, nil, []string{"-issuer"}},
		{"empty_db", []string{"-db", ""}, nil, []string{"-db"}},
		{"log_level", []string{"-log-level", "loud"}, nil, []string{"-log-level"}},
		{"log_format", []string{"-log-format", "xml"}, nil, []string{"-log-format", `"xml"`}},
		{"unknown_flag", []string{"-port", "80"}, nil, []string{"port"}},
		{"cleartext_on_every_interface", []string{"-addr", ":8080"}, nil, []string{"-addr", "not a loopback address", "-tls-cert", "-trusted-proxies"}},
		{"cleartext_on_public_ip", []string{"-addr", "203.0.113.5:80"}, nil, []string{"not a loopback address"}},
		{"cleartext_on_hostname", []string{"-addr", "api.example.com:80"}, nil, []string{"not a loopback address"}},
		{"tls_key_without_cert", []string{"-tls-key", "k.pem"}, nil, []string{"-tls-cert and -tls-key"}},
		{"tls_cert_without_key", []string{"-tls-cert", "c.pem"}, nil, []string{"-tls-cert and -tls-key"}},
		{"positional_argument", []string{"serve"}, nil, []string{"unexpected arguments: serve"}},
		{"redis_scheme", []string{"-redis", "http://127.0.0.1:6379"}, nil, []string{"-redis", "invalid URL scheme", "redis://"}},
		{"redis_database", []string{"-redis", "redis://127.0.0.1:6379/zero"}, nil, []string{"-redis", "database number"}},
		{"redis_unknown_option", []string{"-redis", "redis://127.0.0.1:6379/0?timeout=1s"}, nil, []string{"-redis", "unexpected option: timeout"}},
		{"redis_garbage", nil, env{"GUARD_REDIS": "redis://u:s3cret@host:63%zz/0"}, []string{"-redis", "does not parse"}},
		{"redis_on_failure", []string{"-redis-on-failure", "ignore"}, nil, []string{"-redis-on-failure", "local", "open", "closed", `"ignore"`}},
		{"redis_lockout_open", []string{"-redis-lockout-on-failure", "open"}, nil, []string{"-redis-lockout-on-failure", "local", "closed", "guess passwords"}},
		{"redis_prefixes_equal", []string{"-redis-lockout-prefix", "guard:rl:"}, nil, []string{"-redis-lockout-prefix", "differ from -redis-prefix"}},
		{"redis_channel_empty", []string{"-redis-channel", ""}, nil, []string{"-redis-channel"}},
		{"audit_retention_short", []string{"-audit-retention", "1h"}, nil, []string{"-audit-retention", "24h"}},
		{"redis_password_in_flag", []string{"-redis", "redis://:s3cret@10.0.0.5:6379/0"}, nil, []string{"-redis", "password", "ps", "GUARD_REDIS"}},
		{"pprof_beyond_loopback", []string{"-pprof-addr", "0.0.0.0:6060"}, nil, []string{"-pprof-addr", "not a loopback address", "-pprof-allow-remote"}},
		{"metrics_beyond_loopback", []string{"-metrics-addr", "0.0.0.0:9090"}, nil, []string{"-metrics-addr", "not a loopback address", "-metrics-allow-remote"}},
		{"metrics_on_every_interface", []string{"-metrics-addr", ":9090"}, nil, []string{"-metrics-addr", "not a loopback address"}},
		{"metrics_beyond_loopback_in_env", nil, env{"GUARD_METRICS_ADDR": "10.0.0.5:9090"}, []string{"-metrics-addr", "not a loopback address"}},
		{"metrics_on_the_api_address", []string{"-metrics-addr", "127.0.0.1:8080"}, nil, []string{"-metrics-addr", "listener of their own"}},
		{"bare_without_the_harness_build", []string{"-bare"}, nil, []string{"bare"}},
		{"db_password_in_flag", []string{"-db", "postgres://guard:s3cret@10.0.0.5:5432/guard"}, nil, []string{"-db", "password", "ps", "GUARD_DB"}},
		{"db_garbage", nil, env{"GUARD_DB": "postgres://u:s3cret@host:54%zz/guard"}, []string{"-db", "does not parse"}},
		{"every_problem_at_once", []string{"-cors-origins", "*", "-max-body-bytes", "10"}, nil, []string{"wildcard", "-max-body-bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, tt.args, tt.env)
			if err == nil {
				t.Fatalf("Parse(%q, %v) error = nil, want an error containing %q", tt.args, tt.env, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q, %v) error = %q, want it to contain %q", tt.args, tt.env, err, w)
				}
			}
		})
	}
}

// TestParse_urlErrorsHideThePassword: a Redis or PostgreSQL URL that is refused is
// never repeated with its password, whether it came from the flag or the
// environment.
func TestParse_urlErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		env  env
	}{
		{[]string{"-redis", "redis://:s3cret@10.0.0.5:6379/0"}, nil},
		{[]string{"-redis", "redis://u:s3cret@host:63%zz/0"}, nil},
		{nil, env{"GUARD_REDIS": "redis://u:s3cret@host:63%zz/0"}},
		{nil, env{"GUARD_REDIS": "redis://u:s3cret@host/0/1"}},
		{nil, env{"GUARD_REDIS": "ftp://u:s3cret@host/0"}},
		{[]string{"-db", "postgres://u:s3cret@10.0.0.5:5432/guard"}, nil},
		{nil, env{"GUARD_DB": "postgresql://u:s3cret@host:54%zz/guard"}},
	} {
		var out bytes.Buffer
		_, err := config.Parse(tt.args, tt.env.get, &out)
		if err == nil {
			t.Errorf("Parse(%q, %v) error = nil, want an error", tt.args, tt.env)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(out.String(), "s3cret") {
			t.Errorf("Parse(%q, %v) showed the password: error %q, output %q", tt.args, tt.env, err, out.String())
		}
	}
}

// TestParse_refusesNumberWithTrailingGarbage: GUARD_IP_RATE_LIMIT=10k is
// either 10000 or an error, never silently 10.
func TestParse_refusesNumberWithTrailingGarbage(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"10k", "1e3", "600abc", "12 34", "0x10"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			c, err := parse(t, nil, env{"GUARD_IP_RATE_LIMIT": v})
			if err == nil {
				t.Errorf("Parse(GUARD_IP_RATE_LIMIT=%q) = IPRateLimit %d, nil; want an error", v, c.IPRateLimit)
			}
		})
	}
}

func TestParse_help(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			_, err := config.Parse([]string{arg}, env{}.get, &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("Parse(%s) error = %v, want flag.ErrHelp", arg, err)
			}
			for _, want := range []string{"GUARD_ADDR", "-addr", "GUARD_ADMIN_PASSWORD", "GUARD_TRUSTED_PROXIES", "-cors-origins", "-redis", "GUARD_REDIS_ON_FAILURE"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("usage does not mention %s; got:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := mustParse(t, nil, env{})
	if err := valid.Validate(); err != nil {
		t.Fatalf("Validate(defaults) error = %v, want nil", err)
	}
	tests := []struct {
		name   string
		mutate func(c *config.Config)
		want   string
	}{
		{"wildcard_origin", func(c *config.Config) { c.CORSOrigins = []string{"*"} }, "wildcard"},
		{"trust_all_v6", func(c *config.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("::/0")} }, "every address"},
		{"empty_audience", func(c *config.Config) { c.Audience = "" }, "-audience"},
		{"negative_window", func(c *config.Config) { c.IPRateWindow = -time.Second }, "-ip-rate-window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
