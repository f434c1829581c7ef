package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"
)

// outputFlag is the aws/temporal-style --output switch.
func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "output format: text or json"}
}

// clientFlags are a client command's own flags plus --output and the
// Temporal connection flags every client command shares.
func clientFlags(own ...cli.Flag) []cli.Flag {
	return append(append(own, outputFlag()), connectionFlags()...)
}

// jsonOutput reports whether --output json was asked for; anything but text
// or json is a usage error.
func jsonOutput(c *cli.Context) (bool, error) {
	switch c.String("output") {
	case "text":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, usagef("--output %q: want text or json", c.String("output"))
	}
}

// printJSON writes v as one JSON object on one line.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// tableTime formats an optional time for a table in layout, local time;
// "-" when it is unset. JSON output shows an unset time as null, never as
// 0001-01-01T00:00:00Z: see optTime.
func tableTime(t *time.Time, layout string) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format(layout)
}

// isTerminal reports whether f is a terminal, so progress can be redrawn in
// place rather than printed line by line.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// failed is an operation that ran and did not succeed: exit 1, with the
// message already printed (or msg printed by run()).
func failed(msg string) error { return cli.Exit(msg, exitFailed) }

// dialWithOutput reads --output and dials Temporal: the first two steps of
// every client command. A bad --output is reported before any dial.
func dialWithOutput(c *cli.Context) (client.Client, bool, error) {
	asJSON, err := jsonOutput(c)
	if err != nil {
		return nil, false, err
	}
	cl, err := dial(c)
	return cl, asJSON, err
}
