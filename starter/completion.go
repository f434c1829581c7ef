package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// completionFlag is the flag urfave/cli's completion runs gust with: the
// words typed so far, then this flag, and gust prints the candidates
// instead of running the command.
const completionFlag = "--generate-bash-completion"

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Completes commands, subcommands and flags. Load it in the current shell, or
install it for every new one:

  bash   source <(gust completion bash)     or: gust completion bash > /etc/bash_completion.d/gust
  zsh    source <(gust completion zsh)      (after compinit), or save it as _gust in a directory of $fpath
  fish   gust completion fish > ~/.config/fish/completions/gust.fish

bash and zsh ask gust itself for the candidates (` + completionFlag + `),
so they follow the binary on the PATH; fish's script is a snapshot of
this binary's commands and flags.`,
		Action: runCompletion,
	}
}

func runCompletion(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("completion needs one shell: bash, zsh or fish")
	}
	out := c.App.Writer
	switch shell := c.Args().First(); shell {
	case "bash":
		_, err := io.WriteString(out, bashCompletion)
		return err
	case "zsh":
		_, err := io.WriteString(out, zshCompletion)
		return err
	case "fish":
		script, err := c.App.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("generating the fish completion: %w", err)
		}
		_, err = io.WriteString(out, script)
		return err
	default:
		return usagef("completion: unknown shell %q: want bash, zsh or fish", shell)
	}
}

// bashCompletion asks gust for the candidates of the word under the cursor,
// as urfave/cli's autocomplete/bash_autocomplete does, but needs no
// bash-completion package and never evaluates what was typed.
const bashCompletion = `# bash completion for gust: source <(gust completion bash)
_gust_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local -a words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" ` + completionFlag + ` 2>/dev/null)
  else
    opts=$("${words[@]}" ` + completionFlag + ` 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
}
complete -o bashdefault -o default -F _gust_complete gust
`

// zshCompletion is urfave/cli's autocomplete/zsh_autocomplete for gust.
const zshCompletion = `#compdef gust
# zsh completion for gust: source <(gust completion zsh), after compinit
_gust() {
  local -a opts
  local cur=${words[CURRENT]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:CURRENT-1} "$cur" ` + completionFlag + ` 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:CURRENT-1} ` + completionFlag + ` 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _gust gust
`
