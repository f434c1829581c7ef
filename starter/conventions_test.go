package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// eachFlag calls fn for every flag of every command, with the command's
// path.
func eachFlag(cmds []*cli.Command, path string, fn func(path string, f cli.Flag)) {
	for _, c := range cmds {
		p := strings.TrimSpace(path + " " + c.Name)
		for _, f := range c.Flags {
			fn(p, f)
		}
		eachFlag(c.Subcommands, p, fn)
	}
}

// TestHelpShowsEachDefaultOnce: no flag's help line states a default twice
// ("(default 15m) (default: 0s)"), nor a zero value that means "not set".
func TestHelpShowsEachDefaultOnce(t *testing.T) {
	app := newApp()
	defaults := regexp.MustCompile(`(?i)[(;,]\s*default\b`)
	n := 0
	eachFlag(app.Commands, "", func(path string, f cli.Flag) {
		n++
		line := cli.FlagStringer(f)
		assert.LessOrEqual(t, len(defaults.FindAllString(line, -1)), 1, "gust %s: %s", path, line)
		for _, zero := range []string{"(default: 0s)", "(default: 0)", "(default: false)"} {
			assert.NotContains(t, line, zero, "gust %s", path)
		}
	})
	require.Greater(t, n, 50, "the walk saw gust's flags")

	// A meaningful default still shows, once.
	var help bytes.Buffer
	app = newApp()
	app.Writer = &help
	require.NoError(t, app.Run([]string{"gust", "dev", "--help"}))
	assert.Contains(t, help.String(), `(default: "127.0.0.1")`)
	assert.Contains(t, help.String(), "(default: 7233)")
	help.Reset()
	require.NoError(t, app.Run([]string{"gust", "fleet", "launch", "--help"}))
	assert.Contains(t, help.String(), "how long to wait for capacity (default 15m)\n", "a default in words stays, alone")
	assert.Contains(t, help.String(), "envconfig TOML file (default: the Temporal CLI's)")
}

// TestParseErrorsNameFlagsWithTwoDashes: urfave/cli passes on Go's flag
// package errors, which write every flag with one dash.
func TestParseErrorsNameFlagsWithTwoDashes(t *testing.T) {
	for args, want := range map[string]string{
		"gust --bogus":                              "flag provided but not defined: --bogus",
		"gust fleet launch --timeout soon":          `invalid value "soon" for flag --timeout`,
		"gust fleet launch --min":                   "flag needs an argument: --min",
		"gust fleet launch -t":                      "flag needs an argument: -t",
		"gust fn invoke f --deadline=-x --tenant a": `for flag --deadline`,
	} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.Run(interspersed(app, strings.Fields(args)))
		var ue *usageError
		require.True(t, errors.As(err, &ue), "%s: %v", args, err)
		assert.Contains(t, ue.Error(), want, args)
	}
	assert.Equal(t, `invalid value "-1" for flag --port: x`, longFlagNames(`invalid value "-1" for flag -port: x`))
}

// TestCompletionIsNeverRun: a command line that ends in the completion flag
// is completed, whatever precedes it; gust never runs the command.
func TestCompletionIsNeverRun(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want []string }{
		{[]string{"gust", "fn", "deploy", "echo", completionFlag}, []string{"gust", "fn", "deploy", "echo", completionFlag}},
		{[]string{"gust", "fn", "deploy", "echo", "--tenant", "a", completionFlag}, []string{"gust", "fn", "deploy", "--tenant", "a", "echo", completionFlag}},
		{[]string{"gust", "demo", "--", completionFlag}, []string{"gust", "demo", completionFlag}},
	} {
		assert.Equal(t, tc.want, interspersed(app, tc.in))
	}

	// urfave/cli reads the word before the flag from os.Args.
	complete := func(args ...string) string {
		defer func(saved []string) { os.Args = saved }(os.Args)
		os.Args = args
		var out bytes.Buffer
		app := newApp()
		app.Writer = &out
		require.NoError(t, app.Run(interspersed(app, args)))
		return out.String()
	}
	out := complete("gust", "fleet", completionFlag)
	for _, sub := range []string{"launch", "status", "list", "scale", "cancel"} {
		assert.Contains(t, out, sub+"\n")
	}
	// `gust demo --<TAB>`: urfave/cli would run the demo for a "--".
	out = complete("gust", "demo", "--", completionFlag)
	assert.NotContains(t, out, "Starting gust")
	assert.Contains(t, out, "--keep")
}

// TestCompletionScripts: each shell gets a script that asks this binary.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o bashdefault -o default -F _gust_complete gust",
		"zsh":  "compdef _gust gust",
		"fish": "complete -c gust",
	} {
		var out bytes.Buffer
		app := newApp()
		app.Writer = &out
		require.NoError(t, app.Run([]string{"gust", "completion", shell}))
		assert.Contains(t, out.String(), want, shell)
	}
	app := newApp()
	app.Writer = io.Discard
	var ue *usageError
	require.True(t, errors.As(app.Run([]string{"gust", "completion", "tcsh"}), &ue))
}

// TestVersionsFromBuildInfo: the commit set at link time wins over the
// build information's.
func TestVersionsFromBuildInfo(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v9.9.9", "abc123"
	v := readVersions()
	assert.Equal(t, "v9.9.9", v.Gust)
	assert.Equal(t, "abc123", v.Commit)
	assert.NotEmpty(t, v.Go)
}
