package main

import (
	"os"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/localcloud/lambda/sample"
)

// runtimeAPIEnv is set by Lambda (and gust's local cloud) in every
// execution environment: the Runtime API's host:port.
const runtimeAPIEnv = "AWS_LAMBDA_RUNTIME_API"

// handlerCommand is `gust handler`: gust's own binary as the sample echo
// function (localcloud/lambda/sample), so demos and benchmarks deploy
// `os.Executable()` and need no separate build.
func handlerCommand() *cli.Command {
	return &cli.Command{
		Name:   "handler",
		Usage:  "run the sample echo function inside a Lambda execution environment",
		Hidden: true,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if os.Getenv(runtimeAPIEnv) == "" {
				return usagef("gust handler runs inside a Lambda execution environment: %s is not set", runtimeAPIEnv)
			}
			awslambda.Start(sample.Handle) // never returns; exits on a Runtime API failure
			return nil
		},
	}
}

// handlerArgs is the command line main runs for args. A custom runtime
// starts bootstrap with no arguments, so gust deployed as a function's
// bootstrap cannot be told `gust handler`. Inside an execution environment
// (the Runtime API is set) a bare `gust` means `gust handler`; a bare `gust`
// anywhere else still prints help, and every other command line is left
// as it is.
func handlerArgs(args []string) []string {
	if len(args) == 1 && os.Getenv(runtimeAPIEnv) != "" {
		return []string{args[0], "handler"}
	}
	return args
}
