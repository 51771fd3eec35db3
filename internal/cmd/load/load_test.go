package main

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/connectguard/guard/clients/goclient"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i + 1)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", []time.Duration{7}, 99, 7},
		{"median_of_100", hundred, 50, 50},
		{"p99_of_100", hundred, 99, 99},
		{"p100_is_the_max", hundred, 100, 100},
		{"p99_of_10_is_the_max", hundred[:10], 99, 10},
		{"median_of_even_is_the_lower", []time.Duration{1, 2, 3, 4}, 50, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%d values, %v) = %v, want %v", len(tt.sorted), tt.p, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{"odd", []float64{1.3, 0.9, 1.1}, 1.1},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"outlier_ignored", []float64{1.1, 1.1, 5, 1.2, 1}, 1.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := slices.Clone(tt.xs)
			if got := median(tt.xs); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
			}
			if !slices.Equal(tt.xs, in) {
				t.Errorf("median reordered its input: %v, was %v", tt.xs, in)
			}
		})
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func TestParseStatTicks(t *testing.T) {
	t.Parallel()
	// Fields 14 and 15 are utime 1234 and stime 567; the command name
	// holds a space and parentheses of its own.
	const line = "4242 (gu ard) (x)) S 1 4242 4242 0 -1 4194560 1500 0 0 0 1234 567 0 0 20 0 9 0 1000 2000000000 15000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{"command_with_parentheses", line, 1234 + 567, false},
		{"plain", "1 (guard) R 0 1 1 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 5 0 0", 30, false},
		{"no_command", "1 guard R 0 1 1", 0, true},
		{"truncated", "1 (guard) R 0 1 1 0 -1 0 0 0 0 0 10", 0, true},
		{"not_a_number", "1 (guard) R 0 1 1 0 -1 0 0 0 0 0 ten 20", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatTicks([]byte(tt.stat))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatTicks(%q) = %d, %v; want %d, error %t", tt.stat, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  string
		want    uint64
		wantErr bool
	}{
		{"present", "Name:\tguard\nVmPeak:\t 2000 kB\nVmRSS:\t   61234 kB\nRssAnon:\t 50000 kB\n", 61234, false},
		{"missing", "Name:\tguard\nVmPeak:\t 2000 kB\n", 0, true},
		{"no_unit", "VmRSS:\t 61234\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseVmRSS([]byte(tt.status))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseVmRSS = %d, %v; want %d, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestAuxvClockTicks(t *testing.T) {
	t.Parallel()
	auxv := func(wordSize int, words ...uint64) []byte {
		var b []byte
		for _, w := range words {
			if wordSize == 4 {
				b = binary.NativeEndian.AppendUint32(b, uint32(w))
			} else {
				b = binary.NativeEndian.AppendUint64(b, w)
			}
		}
		return b
	}
	const atPagesz = 6
	tests := []struct {
		name     string
		wordSize int
		auxv     []byte
		want     uint64
		wantOK   bool
	}{
		{"64_bit", 8, auxv(8, atPagesz, 4096, atClkTck, 100, 0, 0), 100, true},
		{"32_bit", 4, auxv(4, atPagesz, 4096, atClkTck, 250, 0, 0), 250, true},
		{"after_the_end", 8, auxv(8, atPagesz, 4096, 0, 0, atClkTck, 100), 0, false},
		{"absent", 8, auxv(8, atPagesz, 4096), 0, false},
		{"zero", 8, auxv(8, atClkTck, 0, 0, 0), 0, false},
		{"truncated", 8, auxv(8, atClkTck)[:8], 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := auxvClockTicks(tt.auxv, tt.wordSize)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("auxvClockTicks = %d, %t; want %d, %t", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseProtocols(t *testing.T) {
	t.Parallel()
	got, err := parseProtocols("grpc, connect,connect+json,grpcweb")
	want := []goclient.Protocol{goclient.GRPC, goclient.Connect, goclient.ConnectJSON, goclient.GRPCWeb}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseProtocols = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "http", "grpc,grpc", "connect,"} {
		if got, err := parseProtocols(bad); err == nil {
			t.Errorf("parseProtocols(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseConcurrency(t *testing.T) {
	t.Parallel()
	got, err := parseConcurrency("64, 1,16")
	if want := []int{64, 1, 16}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseConcurrency = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "0", "-1", "2000", "1,1", "four"} {
		if got, err := parseConcurrency(bad); err == nil {
			t.Errorf("parseConcurrency(%q) = %v, want an error", bad, got)
		}
	}
}

func TestCPUModel(t *testing.T) {
	t.Parallel()
	const cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got, want := cpuModel([]byte(cpuinfo)), "AMD EPYC 7B13"; got != want {
		t.Errorf("cpuModel = %q, want %q", got, want)
	}
	if got, want := cpuModel(nil), "unknown CPU"; got != want {
		t.Errorf("cpuModel(nil) = %q, want %q", got, want)
	}
}
