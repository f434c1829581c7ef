package ec2

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gust-dev/gust/tenants"
)

// The events queue's API: the SQS actions a consumer of an EventBridge
// target queue uses, in the AWS JSON 1.0 protocol that aws-sdk-go-v2's SQS
// client (and the AWS CLI v2) speak: POST / with X-Amz-Target
// AmazonSQS.<Action> and a JSON body. The queue lives in this package
// because it is a view of the cloud's own database: a receive publishes
// the events that became due in the same transaction that hands them out.
//
// Every account has exactly one queue, EventsQueueName, which always
// exists and cannot be created, deleted or sent to. Its URL is
// http://<host>/<account id>/gust-ec2-events. A caller reaches only its
// own account's queue; any other URL, another account's included, is
// QueueDoesNotExist.

// EventsQueueName is the name of every account's events queue.
const EventsQueueName = "gust-ec2-events"

// SQS's limits, which the queue enforces as SQS does.
const (
	sqsDefaultVisibility = 30 * time.Second
	sqsMaxVisibility     = 12 * time.Hour
	sqsMaxWait           = 20 * time.Second
	sqsMaxBatch          = 10
	sqsMaxBody           = 1 << 20
	sqsMaxAttributeNames = 64
)

// SQS error shapes the queue returns: the JSON __type's name, and the
// legacy code SQS puts in X-Amzn-Query-Error, which the SDK reports as
// the error's code.
const (
	sqsQueueDoesNotExist     = "QueueDoesNotExist"
	sqsInvalidParameterValue = "InvalidParameterValue"
	sqsMissingParameter      = "MissingParameter"
	sqsReceiptHandleInvalid  = "ReceiptHandleIsInvalid"
	sqsMessageNotInflight    = "MessageNotInflight"
	sqsEmptyBatch            = "EmptyBatchRequest"
	sqsTooManyEntries        = "TooManyEntriesInBatchRequest"
	sqsIDsNotDistinct        = "BatchEntryIdsNotDistinct"
	sqsInvalidBatchEntryID   = "InvalidBatchEntryId"
	sqsInvalidAttributeName  = "InvalidAttributeName"
	sqsUnsupportedOperation  = "UnsupportedOperation"
	sqsUnknownOperation      = "UnknownOperationException"
	sqsSerialization         = "SerializationException"
	sqsAccessDenied          = "AccessDenied"
	sqsInternalError         = "InternalError"
	// The queue's limits (sqslimits.go). RequestThrottled's query code is
	// itself, which aws-sdk-go-v2's retryer counts as a throttle.
	sqsRequestThrottled     = "RequestThrottled"
	sqsPurgeQueueInProgress = "PurgeQueueInProgress"
)

var sqsQueryCodes = map[string]string{
	sqsQueueDoesNotExist:    "AWS.SimpleQueueService.NonExistentQueue",
	sqsMessageNotInflight:   "AWS.SimpleQueueService.MessageNotInflight",
	sqsEmptyBatch:           "AWS.SimpleQueueService.EmptyBatchRequest",
	sqsTooManyEntries:       "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
	sqsIDsNotDistinct:       "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
	sqsInvalidBatchEntryID:  "AWS.SimpleQueueService.InvalidBatchEntryId",
	sqsUnsupportedOperation: "AWS.SimpleQueueService.UnsupportedOperation",
	sqsPurgeQueueInProgress: "AWS.SimpleQueueService.PurgeQueueInProgress",
}

// sqsError is an error the client sees as an SQS error response.
type sqsError struct {
	code, message string
	status        int // 0: 400
}

func (e *sqsError) Error() string { return e.code + ": " + e.message }

func sqsErrorf(code, format string, args ...any) *sqsError {
	return &sqsError{code: code, message: fmt.Sprintf(format, args...)}
}

// WriteSQSError writes an SQS JSON error response with the given HTTP
// status, code and message, for errors found before a request reaches the
// queue (its authentication). message goes to the caller as is.
func WriteSQSError(rw http.ResponseWriter, status int, code, message string) {
	writeSQSError(rw, &sqsError{code: code, message: message, status: status}, newRequestID())
}

func writeSQSError(rw http.ResponseWriter, e *sqsError, requestID string) {
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	fault := "Sender"
	if status >= 500 {
		fault = "Receiver"
	}
	query, ok := sqsQueryCodes[e.code]
	if !ok {
		query = e.code
	}
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{"com.amazonaws.sqs#" + e.code, e.message})
	rw.Header().Set("Content-Type", "application/x-amz-json-1.0")
	rw.Header().Set("x-amzn-RequestId", requestID)
	rw.Header().Set("x-amzn-query-error", query+";"+fault)
	rw.WriteHeader(status)
	_, _ = rw.Write(b)
}

// ServeSQS serves one SQS JSON call for the principal the request's
// context carries, as ServeHTTP does for EC2: the caller must have been
// authenticated by the local cloud's server, and the principal's tenant
// is the account whose queue the call reads.
func (c *Cloud) ServeSQS(rw http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	principal, ok := tenants.PrincipalFrom(r.Context())
	switch {
	case !ok:
		writeSQSError(rw, &sqsError{code: CodeMissingAuthenticationToken, status: http.StatusForbidden,
			message: "Request is missing Authentication Token"}, requestID)
		return
	case principal.Tenant == "":
		writeSQSError(rw, &sqsError{code: sqsAccessDenied, status: http.StatusForbidden,
			message: "The platform principal must assume a tenant's role first."}, requestID)
		return
	}
	action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if r.Method != http.MethodPost || !ok {
		writeSQSError(rw, sqsErrorf(sqsUnknownOperation, "Only AWS JSON 1.0 calls (POST with X-Amz-Target: AmazonSQS.<Action>) are supported"), requestID)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, sqsMaxBody+1))
	if err != nil || len(body) > sqsMaxBody {
		writeSQSError(rw, sqsErrorf(sqsInvalidParameterValue, "The request body is missing or larger than %d bytes", sqsMaxBody), requestID)
		return
	}
	q := &sqsCall{c: c, acct: principal.Tenant, host: r.Host, r: r, body: body}
	out, err := q.run(action)
	if err != nil {
		var se *sqsError
		if !errors.As(err, &se) {
			se = &sqsError{code: sqsInternalError, message: err.Error(), status: http.StatusInternalServerError}
		}
		writeSQSError(rw, se, requestID)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeSQSError(rw, &sqsError{code: sqsInternalError, message: err.Error(), status: http.StatusInternalServerError}, requestID)
		return
	}
	rw.Header().Set("Content-Type", "application/x-amz-json-1.0")
	rw.Header().Set("x-amzn-RequestId", requestID)
	_, _ = rw.Write(b)
}

// sqsCall is one call to the queue API.
type sqsCall struct {
	c          *Cloud
	acct, host string
	r          *http.Request
	body       []byte
}

func (q *sqsCall) decode(v any) error {
	if err := json.Unmarshal(q.body, v); err != nil {
		return sqsErrorf(sqsSerialization, "The request body is not a valid JSON object of the action's input: %v", err)
	}
	return nil
}

// queueURL is the account's queue URL, on the host the caller reached.
func (q *sqsCall) queueURL() string {
	host := q.host
	if host == "" {
		host = "localhost"
	}
	return "http://" + host + "/" + tenants.AccountID(q.acct) + "/" + EventsQueueName
}

// checkQueue accepts the caller's own queue's URL, on any host, and
// nothing else.
func (q *sqsCall) checkQueue(u string) error {
	if u == "" {
		return sqsErrorf(sqsMissingParameter, "The request must contain the parameter QueueUrl.")
	}
	parsed, err := url.Parse(u)
	if err == nil && strings.Trim(parsed.Path, "/") == tenants.AccountID(q.acct)+"/"+EventsQueueName {
		return nil
	}
	return sqsErrorf(sqsQueueDoesNotExist, "The specified queue does not exist.")
}

func (q *sqsCall) run(action string) (any, error) {
	// Every call counts, the unknown and unsupported ones too, as on SQS.
	if err := q.c.throttleQueue(q.r.Context(), q.acct); err != nil {
		return nil, err
	}
	switch action {
	case "GetQueueUrl":
		return q.getQueueURL()
	case "ListQueues":
		return q.listQueues()
	case "ReceiveMessage":
		return q.receiveMessage()
	case "DeleteMessage":
		return q.deleteMessage()
	case "DeleteMessageBatch":
		return q.deleteMessageBatch()
	case "ChangeMessageVisibility":
		return q.changeMessageVisibility()
	case "GetQueueAttributes":
		return q.getQueueAttributes()
	case "PurgeQueue":
		return q.purgeQueue()
	case "CreateQueue", "DeleteQueue", "SendMessage", "SendMessageBatch", "SetQueueAttributes",
		"ChangeMessageVisibilityBatch", "AddPermission", "RemovePermission", "TagQueue", "UntagQueue",
		"ListQueueTags", "ListDeadLetterSourceQueues", "StartMessageMoveTask", "CancelMessageMoveTask",
		"ListMessageMoveTasks":
		return nil, sqsErrorf(sqsUnsupportedOperation, "%s is not supported: the local cloud's only queue is each account's %s, which the cloud fills", action, EventsQueueName)
	}
	return nil, sqsErrorf(sqsUnknownOperation, "The action %q is not valid for this web service.", action)
}

func (q *sqsCall) getQueueURL() (any, error) {
	var in struct {
		QueueName              string
		QueueOwnerAWSAccountId string
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, sqsErrorf(sqsMissingParameter, "The request must contain the parameter QueueName.")
	}
	if in.QueueName != EventsQueueName || (in.QueueOwnerAWSAccountId != "" && in.QueueOwnerAWSAccountId != tenants.AccountID(q.acct)) {
		return nil, sqsErrorf(sqsQueueDoesNotExist, "The specified queue does not exist.")
	}
	return struct{ QueueUrl string }{q.queueURL()}, nil
}

func (q *sqsCall) listQueues() (any, error) {
	var in struct {
		QueueNamePrefix string
		NextToken       string
		MaxResults      *int64
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1000) {
		return nil, sqsErrorf(sqsInvalidParameterValue, "Value %d for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000.", *in.MaxResults)
	}
	if in.NextToken != "" {
		return nil, sqsErrorf(sqsInvalidParameterValue, "Invalid NextToken value.")
	}
	type out struct {
		QueueUrls []string `json:",omitempty"`
	}
	if !strings.HasPrefix(EventsQueueName, in.QueueNamePrefix) {
		return out{}, nil
	}
	return out{QueueUrls: []string{q.queueURL()}}, nil
}

// messageAttributes are the message system attributes the queue reports.
var messageAttributes = []string{"ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp", "SenderId"}

// knownMessageAttributes are all of SQS's, which a request may name;
// those that do not apply to this queue are not reported.
var knownMessageAttributes = map[string]bool{
	"All": true, "SenderId": true, "SentTimestamp": true, "ApproximateReceiveCount": true,
	"ApproximateFirstReceiveTimestamp": true, "SequenceNumber": true, "MessageDeduplicationId": true,
	"MessageGroupId": true, "AWSTraceHeader": true, "DeadLetterQueueSourceArn": true,
}

func (q *sqsCall) receiveMessage() (any, error) {
	var in struct {
		QueueUrl                    string
		AttributeNames              []string
		MessageSystemAttributeNames []string
		MaxNumberOfMessages         *int64
		VisibilityTimeout           *int64
		WaitTimeSeconds             *int64
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if err := q.checkQueue(in.QueueUrl); err != nil {
		return nil, err
	}
	limit, err := intParam("MaxNumberOfMessages", in.MaxNumberOfMessages, 1, 1, sqsMaxBatch)
	if err != nil {
		return nil, err
	}
	vis, err := intParam("VisibilityTimeout", in.VisibilityTimeout, int64(sqsDefaultVisibility/time.Second), 0, int64(sqsMaxVisibility/time.Second))
	if err != nil {
		return nil, err
	}
	wait, err := intParam("WaitTimeSeconds", in.WaitTimeSeconds, 0, 0, int64(sqsMaxWait/time.Second))
	if err != nil {
		return nil, err
	}
	names := append(in.AttributeNames, in.MessageSystemAttributeNames...)
	if len(names) > sqsMaxAttributeNames {
		return nil, sqsErrorf(sqsInvalidParameterValue, "At most %d attribute names may be requested", sqsMaxAttributeNames)
	}
	want := map[string]bool{}
	for _, n := range names {
		if !knownMessageAttributes[n] {
			return nil, sqsErrorf(sqsInvalidAttributeName, "Unknown Attribute %s.", n)
		}
		want[n] = true
	}
	if wait > 0 {
		// Beyond the account's long polls the receive only looks once
		// (sqslimits.go).
		if release, ok := q.c.queue.startPoll(q.acct, q.c.cfg.QueueLongPolls); ok {
			defer release()
		} else {
			wait = 0
		}
	}
	msgs, err := q.c.receiveWait(q.r.Context(), q.acct, int(limit), time.Duration(vis)*time.Second, time.Duration(wait)*time.Second)
	if err != nil {
		return nil, err
	}
	type outMessage struct {
		MessageId, ReceiptHandle, MD5OfBody, Body string
		Attributes                                map[string]string `json:",omitempty"`
	}
	type out struct {
		Messages []outMessage `json:",omitempty"`
	}
	var o out
	for _, m := range msgs {
		sum := md5.Sum([]byte(m.body))
		om := outMessage{MessageId: m.id, ReceiptHandle: m.receipt, MD5OfBody: hex.EncodeToString(sum[:]), Body: m.body}
		for _, a := range messageAttributes {
			if !want[a] && !want["All"] {
				continue
			}
			if om.Attributes == nil {
				om.Attributes = map[string]string{}
			}
			switch a {
			case "ApproximateReceiveCount":
				om.Attributes[a] = strconv.Itoa(m.receives)
			case "ApproximateFirstReceiveTimestamp":
				om.Attributes[a] = strconv.FormatInt(m.firstNs/1e6, 10)
			case "SentTimestamp":
				om.Attributes[a] = strconv.FormatInt(m.sentNs/1e6, 10)
			case "SenderId":
				om.Attributes[a] = "events.amazonaws.com"
			}
		}
		o.Messages = append(o.Messages, om)
	}
	return o, nil
}

// intParam validates an optional integer parameter.
func intParam(name string, v *int64, def, lo, hi int64) (int64, error) {
	if v == nil {
		return def, nil
	}
	if *v < lo || *v > hi {
		return 0, sqsErrorf(sqsInvalidParameterValue, "Value %d for parameter %s is invalid. Reason: Must be between %d and %d, if provided.", *v, name, lo, hi)
	}
	return *v, nil
}

func (q *sqsCall) deleteMessage() (any, error) {
	var in struct{ QueueUrl, ReceiptHandle string }
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if err := q.checkQueue(in.QueueUrl); err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" {
		return nil, sqsErrorf(sqsMissingParameter, "The request must contain the parameter ReceiptHandle.")
	}
	errs, err := q.c.deleteMessages(q.r.Context(), q.acct, []string{in.ReceiptHandle})
	if err != nil {
		return nil, err
	}
	if errs[0] != nil {
		return nil, sqsErrorf(sqsReceiptHandleInvalid, "The input receipt handle \"%s\" is not a valid receipt handle.", in.ReceiptHandle)
	}
	return struct{}{}, nil
}

func (q *sqsCall) deleteMessageBatch() (any, error) {
	var in struct {
		QueueUrl string
		Entries  []struct{ Id, ReceiptHandle string }
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if err := q.checkQueue(in.QueueUrl); err != nil {
		return nil, err
	}
	switch {
	case len(in.Entries) == 0:
		return nil, sqsErrorf(sqsEmptyBatch, "There should be at least one DeleteMessageBatchRequestEntry in the request.")
	case len(in.Entries) > sqsMaxBatch:
		return nil, sqsErrorf(sqsTooManyEntries, "Maximum number of entries per request are %d. You have sent %d.", sqsMaxBatch, len(in.Entries))
	}
	seen := map[string]bool{}
	handles := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		if !validBatchEntryID(e.Id) {
			return nil, sqsErrorf(sqsInvalidBatchEntryID, "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[e.Id] {
			return nil, sqsErrorf(sqsIDsNotDistinct, "Id %s repeated.", e.Id)
		}
		seen[e.Id] = true
		handles[i] = e.ReceiptHandle
	}
	errs, err := q.c.deleteMessages(q.r.Context(), q.acct, handles)
	if err != nil {
		return nil, err
	}
	type ok struct{ Id string }
	type failed struct {
		Id, Code, Message string
		SenderFault       bool
	}
	out := struct {
		Successful []ok
		Failed     []failed
	}{Successful: []ok{}, Failed: []failed{}}
	for i, e := range in.Entries {
		if errs[i] != nil {
			out.Failed = append(out.Failed, failed{Id: e.Id, Code: sqsReceiptHandleInvalid, SenderFault: true,
				Message: "The input receipt handle \"" + e.ReceiptHandle + "\" is not a valid receipt handle."})
			continue
		}
		out.Successful = append(out.Successful, ok{Id: e.Id})
	}
	return out, nil
}

func validBatchEntryID(id string) bool {
	if id == "" || len(id) > 80 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (q *sqsCall) changeMessageVisibility() (any, error) {
	var in struct {
		QueueUrl, ReceiptHandle string
		VisibilityTimeout       *int64
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if err := q.checkQueue(in.QueueUrl); err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" || in.VisibilityTimeout == nil {
		return nil, sqsErrorf(sqsMissingParameter, "The request must contain the parameters ReceiptHandle and VisibilityTimeout.")
	}
	vis, err := intParam("VisibilityTimeout", in.VisibilityTimeout, 0, 0, int64(sqsMaxVisibility/time.Second))
	if err != nil {
		return nil, err
	}
	err = q.c.changeVisibility(q.r.Context(), q.acct, in.ReceiptHandle, time.Duration(vis)*time.Second)
	if errors.Is(err, errReceiptInvalid) {
		return nil, sqsErrorf(sqsReceiptHandleInvalid, "The input receipt handle \"%s\" is not a valid receipt handle.", in.ReceiptHandle)
	}
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// queueAttributes are the queue attributes the queue reports; the rest
// of SQS's are accepted in a request and not reported, as SQS omits
// attributes that do not apply.
var queueAttributes = []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
	"ApproximateNumberOfMessagesDelayed", "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
	"QueueArn", "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "SqsManagedSseEnabled"}

var knownQueueAttributes = map[string]bool{
	"All": true, "Policy": true, "CreatedTimestamp": true, "LastModifiedTimestamp": true, "RedrivePolicy": true,
	"RedriveAllowPolicy": true, "FifoQueue": true, "ContentBasedDeduplication": true, "KmsMasterKeyId": true,
	"KmsDataKeyReusePeriodSeconds": true, "DeduplicationScope": true, "FifoThroughputLimit": true,
}

func init() {
	for _, a := range queueAttributes {
		knownQueueAttributes[a] = true
	}
}

func (q *sqsCall) getQueueAttributes() (any, error) {
	var in struct {
		QueueUrl       string
		AttributeNames []string
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if err := q.checkQueue(in.QueueUrl); err != nil {
		return nil, err
	}
	if len(in.AttributeNames) > sqsMaxAttributeNames {
		return nil, sqsErrorf(sqsInvalidParameterValue, "At most %d attribute names may be requested", sqsMaxAttributeNames)
	}
	want := map[string]bool{}
	for _, n := range in.AttributeNames {
		if !knownQueueAttributes[n] {
			return nil, sqsErrorf(sqsInvalidAttributeName, "Unknown Attribute %s.", n)
		}
		want[n] = true
	}
	type out struct {
		Attributes map[string]string `json:",omitempty"`
	}
	if len(want) == 0 {
		return out{}, nil
	}
	visible, inflight, err := q.c.queueCounts(q.r.Context(), q.acct)
	if err != nil {
		return nil, err
	}
	values := map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
		"ApproximateNumberOfMessagesDelayed":    "0",
		"DelaySeconds":                          "0",
		"MaximumMessageSize":                    "262144",
		"MessageRetentionPeriod":                strconv.FormatInt(int64(q.c.cfg.EventRetention/time.Second), 10),
		"QueueArn":                              "arn:aws:sqs:" + q.c.cfg.Region + ":" + tenants.AccountID(q.acct) + ":" + EventsQueueName,
		"ReceiveMessageWaitTimeSeconds":         "0",
		"VisibilityTimeout":                     strconv.Itoa(int(sqsDefaultVisibility / time.Second)),
		"SqsManagedSseEnabled":                  "false",
	}
	o := out{Attributes: map[string]string{}}
	for _, a := range queueAttributes {
		if want[a] || want["All"] {
			o.Attributes[a] = values[a]
		}
	}
	return o, nil
}

func (q *sqsCall) purgeQueue() (any, error) {
	var in struct{ QueueUrl string }
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if err := q.checkQueue(in.QueueUrl); err != nil {
		return nil, err
	}
	if err := q.c.purge(q.r.Context(), q.acct); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
