package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/connectguard/guard/store"
)

// errAuditBroken is the error of a verification that found a bad row; the
// report, on stdout, names it.
var errAuditBroken = errors.New("audit trail does not verify")

// runAudit runs `guard audit verify -db DSN`: it walks the audit trail's
// hash chain and prints either OK with the number of rows and the head
// hash, or the first row that does not verify (and fails).
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "Usage: guard audit verify [-db DSN]\n\n"+
			"Walks the audit trail's hash chain, from the oldest kept row (or the\n"+
			"retention anchor) to the newest, and names the first row that was\n"+
			"changed, or that follows a deleted row. It prints OK with the number\n"+
			"of rows and the head hash (record it elsewhere: a later verify that\n"+
			"does not reach it shows the newest rows were removed), and exits 1 on\n"+
			"a broken chain. -db defaults to GUARD_DB, as the server's does; a\n"+
			"PostgreSQL password goes there or in PGPASSWORD, never in the flag.\n\nFlags:")
	}
	if len(args) == 0 || args[0] != "verify" {
		usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return nil
		}
		return errors.New("audit: the one subcommand is verify: guard audit verify -db DSN")
	}
	fs := flag.NewFlagSet("guard audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("GUARD_DB")
	if def == "" {
		def = "./data/guard.db"
	}
	dsn := fs.String("db", def, "SQLite database file, or a postgres:// URL (GUARD_DB)")
	fs.Usage = func() { usage(); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit verify: unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if !store.IsPostgres(*dsn) {
		// Open would create a missing file: verifying it would say OK.
		if _, err := os.Stat(*dsn); err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
	}
	db, err := store.Open(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("audit verify: open database: %w", err)
	}
	defer func() { _ = db.Close() }() // read only: nothing to lose
	r, err := db.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	fmt.Fprintln(stdout, r.String())
	if !r.OK() {
		return errAuditBroken
	}
	return nil
}
