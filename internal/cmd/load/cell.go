package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
)

// load is the work of one cell.
type load struct {
	protocol      goclient.Protocol
	transport     string // h2c or http/1.1
	c             int
	token, noteID string
}

// result is what one cell measured, over all its rounds.
type result struct {
	calls     int             // completed in a window, successfully
	errors    int             // failed, warm-up included
	firstErr  error           // the first failure
	window    time.Duration   // measured time
	latencies []time.Duration // client-observed, of the calls counted
	p50, p99  time.Duration   // of latencies, once the cell is done
	cpu       time.Duration   // server CPU (user + system) in the windows
	mallocs   uint64          // server heap allocations in the windows
	rssKiB    uint64          // server resident memory after the last round
}

func (r result) rate() float64 {
	return float64(r.calls) / r.window.Seconds()
}

func (r result) cpuPerCall() float64 {
	return float64(r.cpu.Microseconds()) / float64(max(r.calls, 1))
}

func (r result) allocsPerCall() float64 {
	return float64(r.mallocs) / float64(max(r.calls, 1))
}

// add adds round to r.
func (r *result) add(round result) {
	r.calls += round.calls
	r.errors += round.errors
	if r.firstErr == nil {
		r.firstErr = round.firstErr
	}
	r.window += round.window
	r.latencies = append(r.latencies, round.latencies...)
	r.cpu += round.cpu
	r.mallocs += round.mallocs
	r.rssKiB = round.rssKiB
}

// finish computes the percentiles.
func (r *result) finish() {
	slices.Sort(r.latencies)
	r.p50, r.p99 = percentile(r.latencies, 50), percentile(r.latencies, 99)
}

// cell drives one server with one protocol and concurrency. Its
// connections last from round to round.
type cell struct {
	s          *server
	l          load
	httpClient *http.Client
	client     *goclient.Client
}

func newCell(s *server, l load) *cell {
	h := newHTTPClient(l.transport, l.c)
	return &cell{s: s, l: l, httpClient: h, client: goclient.New(s.url,
		goclient.WithProtocol(l.protocol), goclient.WithToken(l.token), goclient.WithHTTPClient(h))}
}

func (c *cell) close() { c.httpClient.CloseIdleConnections() }

// The phases of a round, as its workers see them.
const (
	warming int32 = iota
	measuring
	stopping
)

// round runs l.c goroutines calling GetNote in a closed loop: first for
// settle, unmeasured, then for window, in which the calls that complete
// count. Server CPU and allocations are read just before the window opens
// and just after it closes.
func (c *cell) round(ctx context.Context, settle, window time.Duration) (result, error) {
	var (
		phase    atomic.Int32
		errCount atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	latencies := make([][]time.Duration, c.l.c)
	for i := range c.l.c {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			msg := &notesv1.GetNoteRequest{Id: c.l.noteID}
			for phase.Load() != stopping && ctx.Err() == nil {
				start := time.Now()
				res, err := c.client.Notes.GetNote(ctx, connect.NewRequest(msg))
				took := time.Since(start)
				if err == nil && res.Msg.GetNote().GetId() != c.l.noteID {
					err = fmt.Errorf("got note %q, want %q", res.Msg.GetNote().GetId(), c.l.noteID)
				}
				if err != nil {
					if ctx.Err() == nil {
						errCount.Add(1)
						errOnce.Do(func() { firstErr = err })
					}
					continue
				}
				if phase.Load() == measuring {
					lat = append(lat, took)
				}
			}
			latencies[i] = lat
		})
	}

	var r result
	err := func() error {
		if err := sleep(ctx, settle); err != nil {
			return err
		}
		mallocs0, err := serverMallocs(ctx, c.s.vars)
		if err != nil {
			return err
		}
		cpu0, err := processCPU(c.s.pid)
		if err != nil {
			return err
		}
		phase.Store(measuring)
		start := time.Now()
		if err := sleep(ctx, window); err != nil {
			return err
		}
		phase.Store(stopping)
		r.window = time.Since(start)
		cpu1, err := processCPU(c.s.pid)
		if err != nil {
			return err
		}
		mallocs1, err := serverMallocs(ctx, c.s.vars)
		if err != nil {
			return err
		}
		r.cpu, r.mallocs = cpu1-cpu0, mallocs1-mallocs0
		return nil
	}()
	phase.Store(stopping)
	wg.Wait()
	if err != nil {
		return result{}, err
	}
	if c.s.exited() {
		return result{}, fmt.Errorf("the %s server exited", c.s.mode)
	}
	if r.rssKiB, err = processRSS(c.s.pid); err != nil {
		return result{}, err
	}
	r.latencies = slices.Concat(latencies...)
	r.calls = len(r.latencies)
	r.errors, r.firstErr = int(errCount.Load()), firstErr
	if r.calls == 0 && r.errors == 0 {
		return result{}, errors.New("no call completed in the window")
	}
	return r, nil
}

// rounds is how a pair of cells is measured.
type rounds struct {
	n              int           // rounds, alternating full and bare
	warmup, settle time.Duration // before each cell's first round, before every other
	window         time.Duration // measured time of each cell in each round
}

// measurePair measures l on the full server and then the bare one, n
// times in turn, and returns both results with the median of the n
// paired ratios (full ÷ bare) of req/s and of CPU per call: on shared
// cores a neighbour's burst slows one round, and the median leaves it
// out where a total would not.
func measurePair(ctx context.Context, full, bare *server, l load, rs rounds) (row, error) {
	r := row{protocol: l.protocol, transport: l.transport, c: l.c}
	cells := []*cell{newCell(full, l), newCell(bare, l)}
	defer cells[0].close()
	defer cells[1].close()
	var rate, cpu []float64
	for i := range rs.n {
		settle := rs.settle
		if i == 0 {
			settle = rs.warmup
		}
		f, err := cells[0].round(ctx, settle, rs.window)
		if err != nil {
			return row{}, fmt.Errorf("full: %w\n%s", err, full.logs)
		}
		b, err := cells[1].round(ctx, settle, rs.window)
		if err != nil {
			return row{}, fmt.Errorf("bare: %w\n%s", err, bare.logs)
		}
		r.full.add(f)
		r.bare.add(b)
		rate = append(rate, f.rate()/b.rate())
		cpu = append(cpu, f.cpuPerCall()/b.cpuPerCall())
	}
	r.full.finish()
	r.bare.finish()
	r.rateRatio, r.cpuRatio = median(rate), median(cpu)
	return r, nil
}

// median returns the median of xs (the mean of the middle two for an
// even count), or NaN if xs is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or 0 if it is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// serverMallocs reads the server's cumulative heap allocation count from
// expvar. The request itself allocates about 50 times on the server: noise
// against the thousands of calls of a window.
func serverMallocs(ctx context.Context, url string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read expvar: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read expvar: %s", res.Status)
	}
	var vars struct {
		Memstats *struct{ Mallocs uint64 } `json:"memstats"`
	}
	if err := json.NewDecoder(res.Body).Decode(&vars); err != nil {
		return 0, fmt.Errorf("read expvar: %w", err)
	}
	if vars.Memstats == nil {
		return 0, errors.New("read expvar: no memstats")
	}
	return vars.Memstats.Mallocs, nil
}

// processCPU returns the user plus system CPU time that process pid has
// used so far, all its threads together.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	ticks, err := parseStatTicks(b)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks()), nil
}

// parseStatTicks returns utime + stime (fields 14 and 15, in clock ticks)
// of a /proc/<pid>/stat line. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself, so the fields
// are counted from its last closing one.
func parseStatTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc stat utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc stat stime: %w", err)
	}
	return utime + stime, nil
}

// clockTicks is the kernel's USER_HZ (sysconf(_SC_CLK_TCK)), read from the
// auxiliary vector as libc does; 100, its value on every common Linux,
// if that fails.
var clockTicks = sync.OnceValue(func() uint64 {
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		if hz, ok := auxvClockTicks(b, strconv.IntSize/8); ok {
			return hz
		}
	}
	return 100
})

// atClkTck is AT_CLKTCK, the auxiliary vector's entry of USER_HZ.
const atClkTck = 17

// auxvClockTicks finds AT_CLKTCK in an auxiliary vector of native-endian
// (key, value) words of wordSize bytes.
func auxvClockTicks(auxv []byte, wordSize int) (uint64, bool) {
	word := func(b []byte) uint64 {
		if wordSize == 4 {
			return uint64(binary.NativeEndian.Uint32(b))
		}
		return binary.NativeEndian.Uint64(b)
	}
	for ; len(auxv) >= 2*wordSize; auxv = auxv[2*wordSize:] {
		switch word(auxv) {
		case 0: // AT_NULL ends the vector
			return 0, false
		case atClkTck:
			if hz := word(auxv[wordSize:]); hz > 0 {
				return hz, true
			}
			return 0, false
		}
	}
	return 0, false
}

// processRSS returns the resident memory of process pid, in KiB.
func processRSS(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

// parseVmRSS reads the VmRSS line of /proc/<pid>/status ("VmRSS:  1234 kB").
func parseVmRSS(status []byte) (uint64, error) {
	for line := range strings.Lines(string(status)) {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: malformed %q", strings.TrimSpace(line))
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, errors.New("/proc status: no VmRSS")
}

// row is one protocol and concurrency: the full server and the bare one,
// measured in turn.
type row struct {
	protocol            goclient.Protocol
	transport           string
	c                   int
	full, bare          result
	rateRatio, cpuRatio float64 // medians of the rounds' full ÷ bare
}

// writeReport prints the Markdown tables.
func writeReport(w io.Writer, machine string, o options, rows []row) {
	fmt.Fprintf(w, "Machine: %s.\n\n", machine)
	fmt.Fprintf(w, "GetNote by its owner. Full = the whole security chain, bare = the same handlers with no security. Each row: %d rounds of %s on the full server then %s on the bare one (after %s of warm-up each); full÷bare is the median of the rounds' ratios.\n\n",
		o.rounds, o.duration/time.Duration(o.rounds), o.duration/time.Duration(o.rounds), o.warmup)
	fmt.Fprintln(w, "| protocol | transport | c | req/s full | req/s bare | req/s full÷bare | p50 / p99 ms full | p50 / p99 ms bare | CPU µs/call full | CPU µs/call bare | CPU full÷bare | allocs/call full | allocs/call bare | allocs full−bare | RSS MiB full / bare |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		f, b := r.full, r.bare
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.0f | %.2f | %s / %s | %s / %s | %.1f | %.1f | %.2f | %.0f | %.0f | %+.0f | %.0f / %.0f |\n",
			r.protocol, r.transport, r.c,
			f.rate(), b.rate(), r.rateRatio,
			ms(f.p50), ms(f.p99), ms(b.p50), ms(b.p99),
			f.cpuPerCall(), b.cpuPerCall(), r.cpuRatio,
			f.allocsPerCall(), b.allocsPerCall(), math.Round(f.allocsPerCall()-b.allocsPerCall())+0, // +0: no "-0"
			float64(f.rssKiB)/1024, float64(b.rssKiB)/1024)
	}
	writeProtocolCost(w, o, rows)
	fmt.Fprintln(w)
	if failures(rows) == 0 {
		fmt.Fprintln(w, "Errors: none.")
		return
	}
	fmt.Fprintln(w, "Errors:")
	for _, r := range rows {
		for _, m := range []struct {
			mode string
			res  result
		}{{"full", r.full}, {"bare", r.bare}} {
			if m.res.errors > 0 {
				fmt.Fprintf(w, "- %s %s c=%d: %d failed calls; the first: %v\n", m.mode, r.protocol, r.c, m.res.errors, m.res.firstErr)
			}
		}
	}
}

// writeProtocolCost prints each protocol's CPU per call relative to
// Connect binary at the highest concurrency (c=64 by default): gRPC ÷
// Connect on the full server is a target. The bare column is the floor
// that the transports alone set.
func writeProtocolCost(w io.Writer, o options, rows []row) {
	top := slices.Max(o.concurrency)
	var base *row
	for i := range rows {
		if rows[i].protocol == goclient.Connect && rows[i].c == top {
			base = &rows[i]
		}
	}
	fmt.Fprintln(w)
	if base == nil {
		fmt.Fprintln(w, "(CPU per call relative to Connect binary: needs connect in -protocols.)")
		return
	}
	fmt.Fprintf(w, "CPU per call at c=%d relative to Connect binary (%s); the gRPC row is the target:\n\n", top, base.transport)
	fmt.Fprintln(w, "| protocol | transport | CPU µs/call full | ÷ connect full | CPU µs/call bare | ÷ connect bare |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|")
	for _, r := range rows {
		if r.c != top {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %.1f | %.2f | %.1f | %.2f |\n", r.protocol, r.transport,
			r.full.cpuPerCall(), r.full.cpuPerCall()/base.full.cpuPerCall(),
			r.bare.cpuPerCall(), r.bare.cpuPerCall()/base.bare.cpuPerCall())
	}
}

// ms formats a latency in milliseconds with two or three significant
// digits.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// failures counts the failed calls of every cell.
func failures(rows []row) int {
	n := 0
	for _, r := range rows {
		n += r.full.errors + r.bare.errors
	}
	return n
}
