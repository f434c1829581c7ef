package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves flags that follow positional arguments in front of
// them. urfave/cli v2 stops parsing flags at the first positional argument,
// but gust's documented commands put flags after it, as the temporal and aws
// CLIs allow: `gust fleet status ID --output json`, `gust fn deploy NAME
// --tenant T --code PATH`. Everything after "--" stays positional.
//
// A command line that ends in the completion flag is a shell asking for
// candidates: the flag stays last, where urfave/cli looks for it, and a
// "--" is dropped, since urfave/cli would take it to mean "run the command"
// rather than "complete it".
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	if args[len(args)-1] == completionFlag {
		var rest []string
		for _, a := range args[:len(args)-1] {
			if a != "--" {
				rest = append(rest, a)
			}
		}
		return append(interspersed(app, rest), completionFlag)
	}
	out := []string{args[0]}
	cmds, flags := app.Commands, app.Flags
	i := 1
	// The command path: leading tokens naming (sub)commands.
	for ; i < len(args); i++ {
		cmd := findCommand(cmds, args[i])
		if cmd == nil {
			break
		}
		out = append(out, args[i])
		cmds, flags = cmd.Subcommands, cmd.Flags
	}
	var flagArgs, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			hasValue := strings.Contains(a, "=")
			if !hasValue && takesValue(flags, strings.TrimLeft(a, "-")) && i+1 < len(args) {
				flagArgs = append(flagArgs, sliceFlagName(flags, a), args[i+1])
				i++
				continue
			}
			if hasValue {
				a = sliceFlagName(flags, a)
			}
			flagArgs = append(flagArgs, a)
		default:
			positional = append(positional, a)
		}
	}
	out = append(out, flagArgs...)
	return append(out, positional...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the named flag consumes the next argument.
// Unknown flags are assumed to take none; urfave/cli reports them.
func takesValue(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			_, isBool := f.(*cli.BoolFlag)
			return !isBool
		}
	}
	return false
}

// sliceFlagName writes a repeatable flag given by an alias (-t) with its
// primary name (--instance-type). urfave/cli refuses a command line that
// uses two names of one flag, which for a repeatable flag is a natural
// thing to write: -t m5.large --instance-type m5.xlarge:2. Other flags keep
// the name given (two names of a one-value flag stay an error), and so
// does an alias without a value, so its parse error names it as written.
func sliceFlagName(flags []cli.Flag, arg string) string {
	name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		if _, ok := f.(*cli.StringSliceFlag); !ok || !slices.Contains(f.Names(), name) {
			continue
		}
		if primary := f.Names()[0]; primary != name {
			arg = "--" + primary
			if hasValue {
				arg += "=" + value
			}
		}
		return arg
	}
	return arg
}
