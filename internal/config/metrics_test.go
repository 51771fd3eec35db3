package config_test

import "testing"

// TestParse_metrics: -metrics-addr is off by default, loopback addresses
// are accepted as they are, and any other only with -metrics-allow-remote
// (the refusals are in TestParse_refuses).
func TestParse_metrics(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		args       []string
		env        env
		wantAddr   string
		wantRemote bool
	}{
		{"default_off", nil, nil, "", false},
		{"loopback_v4", []string{"-metrics-addr", "127.0.0.1:9090"}, nil, "127.0.0.1:9090", false},
		{"loopback_v6", []string{"-metrics-addr", "[::1]:9090"}, nil, "[::1]:9090", false},
		{"localhost", []string{"-metrics-addr", "localhost:9090"}, nil, "localhost:9090", false},
		{"from_env", nil, env{"GUARD_METRICS_ADDR": "127.0.0.1:9191"}, "127.0.0.1:9191", false},
		{"remote_allowed", []string{"-metrics-addr", "0.0.0.0:9090", "-metrics-allow-remote"}, nil, "0.0.0.0:9090", true},
		{"remote_allowed_in_env", nil, env{"GUARD_METRICS_ADDR": "10.0.0.5:9090", "GUARD_METRICS_ALLOW_REMOTE": "true"}, "10.0.0.5:9090", true},
		{"flag_wins_over_env", []string{"-metrics-addr", "127.0.0.1:9292"}, env{"GUARD_METRICS_ADDR": "10.0.0.5:9090"}, "127.0.0.1:9292", false},
		{"random_port", []string{"-metrics-addr", "127.0.0.1:0"}, nil, "127.0.0.1:0", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, tt.args, tt.env)
			if c.MetricsAddr != tt.wantAddr || c.MetricsAllowRemote != tt.wantRemote {
				t.Errorf("MetricsAddr, MetricsAllowRemote = %q, %v; want %q, %v", c.MetricsAddr, c.MetricsAllowRemote, tt.wantAddr, tt.wantRemote)
			}
		})
	}
}
