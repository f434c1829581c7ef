package ec2

import (
	"context"
	"net/http"
)

// DryRun, as EC2 has it: a call with DryRun=true is checked exactly as the
// real call would be, by running it, and then nothing it did is kept.
// When it would have succeeded the caller gets DryRunOperation (HTTP
// 412); when it would not, the error the real call would have got
// (validation, not found, capacity, throttling).
//
// Every action writes its changes in one transaction (Cloud.write), which
// a dry run rolls back, so no instance, reservation, tag, client token or
// capacity changes, and neither does the RunInstances resource bucket:
// nothing was launched. The request bucket is different: on EC2 "each
// request that you make removes one token from the API's bucket", a dry
// run included, so a dry run takes its token before it runs, in its own
// transaction, and a throttled dry run answers RequestLimitExceeded.

// codeDryRunOperation is the error a dry run that would have succeeded
// answers.
const codeDryRunOperation = "DryRunOperation"

func errDryRunOperation() *apiError {
	return &apiError{Code: codeDryRunOperation, Status: http.StatusPreconditionFailed,
		Message: "Request would have succeeded, but DryRun flag is set."}
}

type dryRunKey struct{}

// withDryRun marks ctx as a dry run's: Cloud.write rolls back.
func withDryRun(ctx context.Context) context.Context {
	return context.WithValue(ctx, dryRunKey{}, true)
}

func isDryRun(ctx context.Context) bool {
	dry, _ := ctx.Value(dryRunKey{}).(bool)
	return dry
}

// dryRunParam reads the DryRun parameter, a boolean as the Query protocol
// writes it.
func dryRunParam(p params) (bool, *apiError) {
	switch v := p.get("DryRun"); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for DryRun: expecting true or false", v)
	}
}
