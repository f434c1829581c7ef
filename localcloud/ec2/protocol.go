package ec2

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// xmlns is the namespace of every EC2 Query API response.
const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// EC2 error codes the local cloud returns.
const (
	codeInvalidAction           = "InvalidAction"
	codeInvalidParameterValue   = "InvalidParameterValue"
	codeInvalidParameterCombo   = "InvalidParameterCombination"
	codeMissingParameter        = "MissingParameter"
	codeRequestLimitExceeded    = "RequestLimitExceeded"
	codeInsufficientCapacity    = "InsufficientInstanceCapacity"
	codeReservationExceeded     = "ReservationCapacityExceeded"
	codeIdempotentMismatch      = "IdempotentParameterMismatch"
	codeInstanceNotFound        = "InvalidInstanceID.NotFound"
	codeInstanceMalformed       = "InvalidInstanceID.Malformed"
	codeReservationNotFound     = "InvalidCapacityReservationId.NotFound"
	codeReservationMalformed    = "InvalidCapacityReservationId.Malformed"
	codeInternalError           = "InternalError"
	codeInvalidNextToken        = "InvalidNextToken"
	codeUnauthorizedOperation   = "UnauthorizedOperation"
	codeInvalidID               = "InvalidID"
	codeTagLimitExceeded        = "TagLimitExceeded"
	codeSpotMaxPriceTooLow      = "SpotMaxPriceTooLow"
	codeSubnetNotFound          = "InvalidSubnetID.NotFound"
	codeVpcNotFound             = "InvalidVpcID.NotFound"
	codeGroupNotFound           = "InvalidGroup.NotFound"
	codeGroupDuplicate          = "InvalidGroup.Duplicate"
	codeGroupMalformed          = "InvalidGroupId.Malformed"
	codeKeyPairNotFound         = "InvalidKeyPair.NotFound"
	codeKeyPairDuplicate        = "InvalidKeyPair.Duplicate"
	codeKeyFormat               = "InvalidKey.Format"
	codeDependencyViolation     = "DependencyViolation"
	codeCannotDelete            = "CannotDelete"
	codeResourceLimitExceeded   = "ResourceLimitExceeded"
	codeUnsupported             = "Unsupported"
	codeTemplateNameExists      = "InvalidLaunchTemplateName.AlreadyExistsException"
	codeTemplateNameNotFound    = "InvalidLaunchTemplateName.NotFoundException"
	codeTemplateNameMalformed   = "InvalidLaunchTemplateName.MalformedException"
	codeTemplateIDNotFound      = "InvalidLaunchTemplateId.NotFound"
	codeTemplateIDMalformed     = "InvalidLaunchTemplateId.Malformed"
	codeTemplateVersionNotFound = "InvalidLaunchTemplateId.VersionNotFound"
	codeFleetNotFound           = "InvalidFleetId.NotFound"
)

// The codes EC2 answers a request it cannot authenticate with. The local
// cloud's server writes them with WriteError before a request reaches the
// service; CodeMissingAuthenticationToken is also the service's own answer
// to a request that carries no principal.
const (
	CodeAuthFailure                = "AuthFailure"
	CodeSignatureDoesNotMatch      = "SignatureDoesNotMatch"
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeRequestExpired             = "RequestExpired"
)

// apiError is an error the client sees as an EC2 error response.
type apiError struct {
	Code    string
	Message string
	// Status overrides the HTTP status the code implies, when not zero.
	Status int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func apiErrorf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// status is the HTTP status EC2 answers a code with. EC2 reports throttling
// as 503 and capacity shortages as 500 (they are "server errors" in its
// error reference); everything the client got wrong is 400. Note that
// aws-sdk-go-v2's default retryer retries all three of RequestLimitExceeded
// (a throttle code), 500 and 503, which is why gust's provider installs a
// retryer that does not.
func (e *apiError) status() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case codeRequestLimitExceeded:
		return http.StatusServiceUnavailable
	case codeInsufficientCapacity, codeInternalError:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// xmlWriter builds a response with no reflection: DescribeInstances of ten
// thousand instances writes a few hundred thousand elements.
type xmlWriter struct{ b bytes.Buffer }

func (w *xmlWriter) open(name string) {
	w.b.WriteByte('<')
	w.b.WriteString(name)
	w.b.WriteByte('>')
}

func (w *xmlWriter) close(name string) {
	w.b.WriteString("</")
	w.b.WriteString(name)
	w.b.WriteByte('>')
}

func (w *xmlWriter) text(name, value string) {
	w.open(name)
	_ = xml.EscapeText(&w.b, []byte(value))
	w.close(name)
}

func (w *xmlWriter) int(name string, v int) { w.text(name, strconv.Itoa(v)) }

func (w *xmlWriter) bool(name string, v bool) { w.text(name, strconv.FormatBool(v)) }

func (w *xmlWriter) time(name string, t time.Time) {
	w.text(name, t.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// tagSet writes tags as EC2's tagSet, sorted by key for stable output. It
// writes nothing for no tags, as EC2 omits the element.
func (w *xmlWriter) tagSet(tags map[string]string) {
	if len(tags) == 0 {
		return
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.open("tagSet")
	for _, k := range keys {
		w.open("item")
		w.text("key", k)
		w.text("value", tags[k])
		w.close("item")
	}
	w.close("tagSet")
}

// WriteError writes an EC2 error response with the given HTTP status, code
// and message, for errors found before a request reaches the service (its
// authentication). message goes to the caller as is.
func WriteError(rw http.ResponseWriter, status int, code, message string) {
	writeError(rw, &apiError{Code: code, Message: message, Status: status}, newRequestID())
}

func writeError(rw http.ResponseWriter, e *apiError, requestID string) {
	var w xmlWriter
	w.b.WriteString(xml.Header)
	w.open("Response")
	w.open("Errors")
	w.open("Error")
	w.text("Code", e.Code)
	w.text("Message", e.Message)
	w.close("Error")
	w.close("Errors")
	w.text("RequestID", requestID)
	w.close("Response")
	rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	rw.Header().Set("x-amzn-RequestId", requestID)
	rw.WriteHeader(e.status())
	_, _ = rw.Write(w.b.Bytes())
}

// newID returns prefix followed by 17 random hex digits, the shape of EC2's
// long resource ids (i-0123456789abcdef0).
func newID(prefix string) string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])[:17]
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// params reads EC2 Query parameters. Lists are flattened with 1-based
// indexes: InstanceId.1, Filter.2.Value.1, TagSpecification.1.Tag.3.Key.
type params url.Values

func (p params) get(name string) string { return url.Values(p).Get(name) }

func (p params) has(name string) bool {
	_, ok := p[name]
	return ok
}

func (p params) required(name string) (string, error) {
	v := p.get(name)
	if v == "" {
		return "", apiErrorf(codeMissingParameter, "The request must contain the parameter %s", name)
	}
	return v, nil
}

// integer parses an optional integer parameter; def is returned when absent.
func (p params) integer(name string, def int) (int, error) {
	if !p.has(name) {
		return def, nil
	}
	v, err := strconv.Atoi(p.get(name))
	if err != nil {
		return 0, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for %s", p.get(name), name)
	}
	return v, nil
}

// indexes returns the sorted list indexes N present as prefix.N or
// prefix.N.suffix.
func (p params) indexes(prefix string) []int {
	seen := map[int]bool{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// list returns the values of prefix.1, prefix.2, ...
func (p params) list(prefix string) []string {
	var out []string
	for _, n := range p.indexes(prefix) {
		if v := p.get(prefix + "." + strconv.Itoa(n)); v != "" {
			out = append(out, v)
		}
	}
	return out
}

type filter struct {
	Name   string
	Values []string
}

func (p params) filters() ([]filter, error) {
	var out []filter
	for _, n := range p.indexes("Filter") {
		pre := "Filter." + strconv.Itoa(n)
		name := p.get(pre + ".Name")
		if name == "" {
			return nil, apiErrorf(codeInvalidParameterValue, "The filter %s has no name", pre)
		}
		out = append(out, filter{Name: name, Values: p.list(pre + ".Value")})
	}
	return out, nil
}

// tags collects the tags of the tag specifications under prefix whose
// ResourceType is resourceType (or unset). Other resource types (volumes,
// network interfaces) have no resources here and are ignored.
func (p params) tags(prefix, resourceType string) (map[string]string, error) {
	tags := map[string]string{}
	for _, n := range p.indexes(prefix) {
		pre := prefix + "." + strconv.Itoa(n)
		if rt := p.get(pre + ".ResourceType"); rt != "" && rt != resourceType {
			continue
		}
		for _, m := range p.indexes(pre + ".Tag") {
			tp := pre + ".Tag." + strconv.Itoa(m)
			k, v := p.get(tp+".Key"), p.get(tp+".Value")
			if err := checkTag(k, v); err != nil {
				return nil, err
			}
			if _, dup := tags[k]; dup {
				return nil, apiErrorf(codeInvalidParameterValue, "Duplicate tag key '%s' specified", k)
			}
			tags[k] = v
		}
	}
	if len(tags) > maxTagsPerResource {
		return nil, apiErrorf(codeTagLimitExceeded, "The maximum number of tags per resource is %d, got %d", maxTagsPerResource, len(tags))
	}
	return tags, nil
}

// checkTag applies EC2's rules for one tag: a key of 1 to 128 characters
// that does not start with the reserved "aws:", a value of at most 256.
func checkTag(k, v string) error {
	switch {
	case k == "" || len(k) > 128:
		return apiErrorf(codeInvalidParameterValue, "Tag key must be 1 to 128 characters, got %q", k)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return apiErrorf(codeInvalidParameterValue, "Tag keys starting with 'aws:' are reserved for internal use")
	case len(v) > 256:
		return apiErrorf(codeInvalidParameterValue, "Tag value for key %q exceeds 256 characters", k)
	}
	return nil
}

// digest canonicalizes the request's parameters, minus the ones that do not
// change its meaning, so that a ClientToken replay can be compared with the
// original call.
func (p params) digest() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		switch k {
		case "Action", "Version", "ClientToken", "DryRun":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range p[k] {
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
			b.WriteByte('&')
		}
	}
	return b.String()
}
