package workflows

import (
	"errors"
	"slices"

	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
)

// surfacedErrorTypes are the final activity errors the function workflows
// (InvokeWorkflow and the admin workflows of functions.go) fail with as
// they are: a bad request, an unknown function, an operation the provider
// does not offer, an invocation that waited too long in the queue. Their
// contract promises these types at the top of the workflow's failure.
var surfacedErrorTypes = []string{
	providers.ErrTypeInvalid,
	providers.ErrTypeNotFound,
	providers.ErrTypeUnsupported,
	providers.ErrTypeQueueTimeout,
}

// surfaceError puts a final activity error's type and message at the top of
// the workflow's failure, so starters and the gateway read it with one
// errors.As instead of unwrapping the ActivityError. ok is false, and err
// is the caller's to handle, when err is not an ApplicationError of a
// surfaced type.
func surfaceError(err error) (_ error, ok bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !slices.Contains(surfacedErrorTypes, appErr.Type()) {
		return err, false
	}
	return temporal.NewNonRetryableApplicationError(appErr.Message(), appErr.Type(), nil), true
}
