// Command gust runs and drives the gust platform: `gust dev` for a complete
// single-machine platform, `gust worker` to scale out against any Temporal
// cluster, `gust demo` for the showcase, and the `fleet` and `fn` client
// commands.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit codes, following the temporal and aws CLIs.
const (
	exitFailed = 1 // the operation ran and failed (an unfulfilled fleet, a function error)
	exitUsage  = 2 // the command line was wrong; nothing ran
)

func main() {
	os.Exit(run(handlerArgs(os.Args)))
}

func run(args []string) int {
	app := newApp()
	err := app.Run(interspersed(app, args))
	if err == nil {
		return 0
	}
	msg := oneLine(err.Error())
	var coder cli.ExitCoder
	switch {
	case errors.As(err, new(*usageError)):
		fmt.Fprintf(os.Stderr, "gust: %s\n", msg)
		return exitUsage
	case errors.As(err, &coder):
		if msg != "" {
			fmt.Fprintf(os.Stderr, "gust: %s\n", msg)
		}
		return coder.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "gust: %s\n", msg)
		return exitFailed
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:  "gust",
		Usage: "burst fleet launches and multi-tenant serverless, as durable Temporal workflows",
		Commands: []*cli.Command{
			devCommand(),
			workerCommand(),
			demoCommand(),
			fleetCommand(),
			fnCommand(),
			gatewayCommand(),
			tenantCommand(),
			benchCommand(),
			handlerCommand(),
		},
		Suggest:        true,
		ExitErrHandler: func(*cli.Context, error) {}, // run() reports errors, once, on one line
		CommandNotFound: func(c *cli.Context, name string) {
			// urfave/cli would print help and exit 0; an unknown command is a
			// usage error.
			fmt.Fprintf(os.Stderr, "gust: unknown command %q for %q\n", name, c.Command.FullName())
			os.Exit(exitUsage)
		},
	}
	app.OnUsageError = onUsageError
	setUsageErrors(app.Commands)
	return app
}

// usageError marks an error as the caller's: bad flags, arguments or values.
// run() exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return &usageError{msg: err.Error()}
}

func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		if c.Action == nil && len(c.Subcommands) > 0 {
			c.Action = func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usagef("unknown command %q for %q", c.Args().First(), c.Command.FullName())
				}
				_ = cli.ShowSubcommandHelp(c)
				return usagef("%q needs a subcommand", c.Command.FullName())
			}
		}
		setUsageErrors(c.Subcommands)
	}
}

// oneLine keeps errors to one line, as promised to users: multi-line errors
// from dependencies are folded.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// noArgs rejects stray positional arguments.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("unexpected argument %q", c.Args().First())
	}
	return nil
}
