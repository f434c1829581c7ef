package sqsevents

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/gust-dev/gust/providers"
)

// translate types an SQS error. SQS speaks AWS JSON but reports the codes
// of its older Query protocol too (AWS.SimpleQueueService.NonExistentQueue
// for QueueDoesNotExist), and the SDK surfaces either, so both are listed.
func translate(err error) error {
	var gone *types.QueueDoesNotExist
	if errors.As(err, &gone) {
		return providers.NewNotFoundError(err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err // the network, a cancelled context: transient
	}
	code := ae.ErrorCode()
	switch {
	case code == "QueueDoesNotExist" || code == "AWS.SimpleQueueService.NonExistentQueue":
		return providers.NewNotFoundError(err)
	case strings.Contains(code, "Throttl") || code == "OverLimit" || code == "RequestLimitExceeded" || code == "KmsThrottled":
		return providers.NewThrottledError(err)
	case ae.ErrorFault() == smithy.FaultServer:
		return err
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return err
	}
	// The rest are the caller's: access denied, a malformed request, an
	// unsupported operation. The same request never succeeds.
	return providers.NewInvalidError(err)
}

// isQueueGone reports whether err says the queue does not exist.
func isQueueGone(err error) bool { return providers.IsNotFound(err) }

func invalidf(format string, args ...any) error {
	return providers.NewInvalidError(fmt.Errorf(format, args...))
}
