package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/workflows"
)

// Outcomes of an invocation in `gust fn invocations`: snake_case, as every
// value in gust's JSON; the table shows them with spaces.
const (
	outcomeSucceeded     = "succeeded"
	outcomeFunctionError = "function_error"
	outcomeQueueTimeout  = "queue_timeout"
	outcomeFailed        = "failed"
	outcomeRunning       = "running"
)

// maxInvocationsScanned bounds how many executions one listing reads from
// visibility while filtering by sub-tenant.
const maxInvocationsScanned = 10000

// fnInvocation is one row of `gust fn invocations`; its JSON form is the
// --output json of the command.
type fnInvocation struct {
	Started    time.Time `json:"started"`
	RequestID  string    `json:"request_id"`
	SubTenant  string    `json:"subtenant"`
	Status     string    `json:"status"`
	ErrorType  string    `json:"error_type,omitempty"`
	DurationMS int64     `json:"duration_ms"`
	Attempts   int       `json:"attempts,omitempty"`
	WorkflowID string    `json:"workflow_id"`
}

func runFnInvocations(c *cli.Context) error {
	tenant, name, err := fnArgs(c, true)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	sub := c.String("subtenant")
	if sub != "" {
		if err := workflows.ValidateSubTenant(sub); err != nil {
			return usagef("--subtenant: %v", err)
		}
	}
	limit := c.Int("limit")
	if limit < 1 || limit > 1000 {
		return usagef("--limit %d: want 1 to 1000", limit)
	}
	opts, err := clientOptions(c)
	if err != nil {
		return err
	}
	cl, err := dialOptions(c.Context, opts)
	if err != nil {
		return err
	}
	defer cl.Close()
	dc := opts.DataConverter
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	rows, truncated, err := listInvocations(c.Context, cl, dc, tenant, name, sub, limit)
	if err != nil {
		return failed(fmt.Sprintf("listing invocations of %s: %s", name, oneLine(err.Error())))
	}
	if truncated {
		fmt.Fprintf(os.Stderr, "(stopped after reading %d invocations of other sub-tenants)\n", maxInvocationsScanned)
	}
	if asJSON {
		if rows == nil {
			rows = []fnInvocation{}
		}
		return printJSON(c.App.Writer, rows)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STARTED\tREQUEST ID\tSUB-TENANT\tSTATUS\tDURATION")
	for _, r := range rows {
		status := strings.ReplaceAll(r.Status, "_", " ")
		if r.ErrorType != "" {
			status += " (" + r.ErrorType + ")"
		}
		if r.Attempts > 1 {
			status += fmt.Sprintf(", %d attempts", r.Attempts)
		}
		fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s\n", r.Started.Local().Format(time.DateTime), r.RequestID, r.SubTenant, status,
			(time.Duration(r.DurationMS) * time.Millisecond).String())
	}
	return w.Flush()
}

// listInvocations lists the function's invocations from visibility, newest
// first. Visibility filters by workflow type and id prefix (which the
// embedded SQLite visibility supports); the memo each starter sets
// (workflows.InvokeMemo) picks the exact tenant, function and sub-tenant
// without reading histories. A workflow without the memo is checked
// against its input.
func listInvocations(ctx context.Context, cl client.Client, dc converter.DataConverter, tenant, function, sub string, limit int) ([]fnInvocation, bool, error) {
	query := fmt.Sprintf("WorkflowType = 'InvokeWorkflow' AND WorkflowId STARTS_WITH '%s'", workflows.InvokeWorkflowIDPrefix(tenant, function))
	var rows []fnInvocation
	var token []byte
	scanned := 0
	for len(rows) < limit {
		resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, PageSize: int32(min(1000, max(limit*2, 100))), NextPageToken: token,
		})
		if err != nil {
			return nil, false, err
		}
		for _, ex := range resp.Executions {
			scanned++
			in, ok, err := invocationInput(ctx, cl, dc, ex)
			if err != nil {
				return nil, false, err
			}
			if !ok || in.Tenant != tenant || in.Function != function || (sub != "" && in.SubTenant != sub) {
				continue
			}
			row, err := invocationRow(ctx, cl, ex, in)
			if err != nil {
				return nil, false, err
			}
			rows = append(rows, row)
			if len(rows) == limit {
				break
			}
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
		if scanned >= maxInvocationsScanned {
			sortInvocations(rows)
			return rows, true, nil
		}
	}
	sortInvocations(rows)
	return rows, false, nil
}

func sortInvocations(rows []fnInvocation) {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Started.After(rows[j].Started) })
}

// invocationInput returns the tenant, function and sub-tenant (and, when it
// had to read it, the request id) of an InvokeWorkflow: from its memo, or
// from its input when a starter set no memo. ok is false for a workflow
// whose input is not an invocation.
func invocationInput(ctx context.Context, cl client.Client, dc converter.DataConverter, ex *workflowpb.WorkflowExecutionInfo) (workflows.InvokeInput, bool, error) {
	var in workflows.InvokeInput
	fields := ex.GetMemo().GetFields()
	if memoString(dc, fields[workflows.MemoTenant], &in.Tenant) && memoString(dc, fields[workflows.MemoFunction], &in.Function) &&
		memoString(dc, fields[workflows.MemoSubTenant], &in.SubTenant) {
		return in, true, nil
	}
	it := cl.GetWorkflowHistory(ctx, ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return in, false, nil
	}
	ev, err := it.Next()
	if err != nil {
		return in, false, err
	}
	input := ev.GetWorkflowExecutionStartedEventAttributes().GetInput()
	if input == nil || dc.FromPayloads(input, &in) != nil {
		return in, false, nil
	}
	return in, true, nil
}

func memoString(dc converter.DataConverter, p *commonpb.Payload, out *string) bool {
	return p != nil && dc.FromPayload(p, out) == nil && *out != ""
}

// invocationRow reads the outcome of a closed invocation from its result
// (a completed InvokeWorkflow may carry a function error) or its failure.
func invocationRow(ctx context.Context, cl client.Client, ex *workflowpb.WorkflowExecutionInfo, in workflows.InvokeInput) (fnInvocation, error) {
	id, runID := ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId()
	row := fnInvocation{
		Started:    ex.GetStartTime().AsTime(),
		RequestID:  in.RequestID,
		SubTenant:  in.SubTenant,
		WorkflowID: id,
	}
	if row.RequestID == "" {
		row.RequestID = strings.TrimPrefix(id, workflows.InvokeWorkflowIDPrefix(in.Tenant, in.Function))
	}
	end := time.Now()
	if ct := ex.GetCloseTime(); ct != nil && ex.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		end = ct.AsTime()
	}
	row.DurationMS = end.Sub(row.Started).Milliseconds()
	switch ex.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		row.Status = outcomeRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var res workflows.InvokeResult
		if err := cl.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil {
			return row, err
		}
		row.Status, row.Attempts = outcomeSucceeded, res.Attempts
		if fe := res.FunctionError; fe != nil {
			row.Status, row.ErrorType = outcomeFunctionError, fe.Type
		}
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		err := cl.GetWorkflow(ctx, id, runID).Get(ctx, nil)
		row.Status = outcomeFailed
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			row.ErrorType = appErr.Type()
			if appErr.Type() == workflows.ErrTypeQueueTimeout {
				row.Status, row.ErrorType = outcomeQueueTimeout, ""
			}
		}
	default: // terminated, canceled, timed out, continued as new
		row.Status = strings.ToLower(strings.TrimPrefix(ex.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
	}
	return row, nil
}
