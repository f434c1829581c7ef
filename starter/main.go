// Command gust runs and drives the gust platform: `gust dev` for a complete
// single-machine platform, `gust worker` to scale out against any Temporal
// cluster, `gust demo` for the showcase, and the `fleet` and `fn` client
// commands.
package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
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
			cloudCommand(),
			tenantCommand(),
			benchCommand(),
			versionCommand(),
			completionCommand(),
			handlerCommand(),
		},
		Version:              readVersions().Gust,
		EnableBashCompletion: true,
		Suggest:              true,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() reports errors, once, on one line
		CommandNotFound: func(c *cli.Context, name string) {
			// urfave/cli would print help and exit 0; an unknown command is a
			// usage error.
			fmt.Fprintf(os.Stderr, "gust: unknown command %q for %q\n", name, c.Command.FullName())
			os.Exit(exitUsage)
		},
	}
	app.OnUsageError = onUsageError
	setUsageErrors(app.Commands)
	setDeadlines(app.Commands, "")
	cli.VersionPrinter = func(c *cli.Context) { _ = printVersions(c.App.Writer, false) }
	cli.FlagStringer = flagString
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
	return &usageError{msg: longFlagNames(err.Error())}
}

// shortFlag is a flag name after one dash in a parse error of Go's flag
// package, which urfave/cli uses: "flag provided but not defined: -bogus",
// "invalid value "x" for flag -timeout: ...".
var shortFlag = regexp.MustCompile(`(^|[\s:])-([A-Za-z0-9][A-Za-z0-9-]+)`)

// longFlagNames writes the long flag names in a parse error with two
// dashes, as gust's help and the temporal and aws CLIs write them; the
// one-letter aliases (-t, -n, -o) keep one.
func longFlagNames(msg string) string {
	return shortFlag.ReplaceAllString(msg, "${1}--${2}")
}

// urfaveFlagString is urfave/cli's own help line for a flag.
var urfaveFlagString = cli.FlagStringer

// ownDefault matches a usage that states its default in words: "(default
// 15m)", "(1s to 15m; default 3s)".
var ownDefault = regexp.MustCompile(`[(;,]\s*default\b`)

// flagString is the help line of a flag with its default shown once.
// urfave/cli appends "(default: X)" to every usage: it goes where the usage
// already states its default in words, and where X is a zero value that
// means "not set" (0s for a duration without a bound, false for a switch).
func flagString(f cli.Flag) string {
	s := urfaveFlagString(f)
	df, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return s
	}
	value := df.GetDefaultText()
	if value == "" || (!ownDefault.MatchString(df.GetUsage()) && !zeroDefault[value]) {
		return s
	}
	added := " (default: " + value + ")"
	i := strings.LastIndex(s, added)
	if i < 0 {
		return s
	}
	return s[:i] + s[i+len(added):]
}

// zeroDefault are the defaults that mean "not set".
var zeroDefault = map[string]bool{"": true, `""`: true, "0": true, "0s": true, "false": true}

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
