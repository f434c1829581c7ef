package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gust-dev/gust/codec"
	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/workflows"
)

// startCodecFnPlatform is startFnPlatform with what the tests need to see
// secrets encrypted: the platform's codec key file, and a raw client that
// knows no codec, to read history as the server stores it.
func startCodecFnPlatform(t *testing.T) (p fnPlatform, keyFile string, raw client.Client) {
	t.Helper()
	pl := startPlatform(t, 100)
	raw, err := client.Dial(client.Options{HostPort: pl.Server().FrontendAddress(), Namespace: "default", Logger: itest.QuietLogger()})
	require.NoError(t, err)
	t.Cleanup(raw.Close)
	return newFnPlatform(pl), pl.CodecKeyFile(), raw
}

// historyHolds reports whether any event of the workflow's history, as
// the server stores it, holds secret in clear or in base64, and counts its
// encrypted payloads.
func historyHolds(ctx context.Context, t *testing.T, raw client.Client, workflowID, secret string) (found bool, encrypted int) {
	t.Helper()
	forms := [][]byte{[]byte(secret), []byte(base64.StdEncoding.EncodeToString([]byte(secret)))}
	it := raw.GetWorkflowHistory(ctx, workflowID, "", false, 0)
	events := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events++
		wire, err := proto.Marshal(ev)
		require.NoError(t, err)
		for _, f := range forms {
			if strings.Contains(string(wire), string(f)) {
				found = true
			}
		}
		encrypted += countEncrypted(ev)
	}
	require.NotZero(t, events, "history of %s", workflowID)
	return found, encrypted
}

// countEncrypted counts the payloads of msg, at any depth, that the codec
// encrypted.
func countEncrypted(msg proto.Message) int {
	n := 0
	var walk func(m proto.Message)
	walk = func(m proto.Message) {
		if p, ok := m.(*commonpb.Payload); ok {
			if string(p.Metadata[converter.MetadataEncoding]) == codec.EncodingEncrypted {
				n++
			}
			return
		}
		m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message().Interface())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message().Interface())
					return true
				})
			case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
				walk(v.Message().Interface())
			}
			return true
		})
	}
	walk(msg)
	return n
}

// TestFunctionSecretsStayOutOfHistory deploys a function with a secret
// variable through the real server and worker, and reads every workflow
// history with a client that has no codec: the secret is nowhere in clear,
// while the function receives it and clients with the key read it back.
// Without the key, deploying refuses to start.
func TestFunctionSecretsStayOutOfHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	itest.GustBinary(t) // build before the platform starts
	code := itest.EchoHandler(t)
	p, keyFile, raw := startCodecFnPlatform(t)
	secret := "sk_live_" + strings.ReplaceAll(uuid.NewString(), "-", "")

	// Deploy and list through the SDK, with the key.
	in := workflows.DeployInput{Tenant: "acme", Name: "vault", Env: map[string]string{"API_KEY": secret, "MODE": "prod"}}
	require.NoError(t, in.SetCode(code))
	deployID := workflows.FunctionWorkflowID(workflows.OpDeploy, "acme", "vault", uuid.NewString())
	run, err := p.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: deployID, TaskQueue: workflows.TaskQueue}, workflows.DeployFunctionWorkflow, in)
	require.NoError(t, err)
	var dep workflows.DeployResult
	require.NoError(t, run.Get(ctx, &dep))
	require.Equal(t, secret, dep.Function.Env["API_KEY"])

	listID := workflows.FunctionWorkflowID(workflows.OpList, "acme", "", uuid.NewString())
	run, err = p.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: listID, TaskQueue: workflows.TaskQueue},
		workflows.ListFunctionsWorkflow, workflows.ListFunctionsInput{Tenant: "acme"})
	require.NoError(t, err)
	var listed workflows.ListFunctionsResult
	require.NoError(t, run.Get(ctx, &listed))
	require.Len(t, listed.Functions, 1)
	require.Equal(t, secret, listed.Functions[0].Env["API_KEY"])

	// The function receives the variable. Its response echoes it: that
	// invocation's history holds it, as the tenant's own output, and is
	// the one history not scanned below.
	echo := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: "acme", Function: "vault", SubTenant: "cust-1", Payload: json.RawMessage(`{"env":["API_KEY"]}`)}
	echoID := workflows.InvokeWorkflowID("acme", "vault", echo.RequestID)
	run, err = p.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: echoID, TaskQueue: workflows.TaskQueue}, workflows.InvokeWorkflow, echo)
	require.NoError(t, err)
	var echoed workflows.InvokeResult
	require.NoError(t, run.Get(ctx, &echoed))
	var resp sample.Response
	require.NoError(t, json.Unmarshal(echoed.Payload, &resp))
	require.Equal(t, secret, resp.Env["API_KEY"])
	quiet, err := itest.InvokeFn(ctx, p.client, "acme", "vault", "cust-1", `{"echo":"hi"}`)
	require.NoError(t, err)
	require.Contains(t, string(quiet.Payload), `"hi"`)

	// Through the CLI, with the key: deploy a new version, list as JSON.
	t.Setenv("GUST_STATE_DIR", t.TempDir()) // no default key file for the CLI
	withKey := []string{"--address", p.address, "--codec-key-file", keyFile}
	_, stderr, rc := gust(t, append([]string{"fn", "deploy", "vault", "--tenant", "acme", "--code", code, "--env", "API_KEY=" + secret}, withKey...)...)
	require.Equal(t, 0, rc, stderr)
	// fn list reads the cloud as the tenant, not a workflow's history: it
	// needs the tenant's key, not the codec key, and the tenant sees its
	// variables, as on AWS.
	stdout, stderr, rc := gust(t, append([]string{"fn", "list", "--tenant", "acme", "--output", "json"}, p.cloud...)...)
	require.Equal(t, 0, rc, stderr)
	require.Contains(t, stdout, secret, "the tenant sees its variables")

	// Without the key: deploying with --env starts nothing, with one line.
	_, stderr, rc = gust(t, "fn", "deploy", "vault", "--tenant", "acme", "--code", code, "--env", "API_KEY=x", "--address", p.address)
	require.Equal(t, 2, rc, stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	require.Contains(t, stderr, "gust fn deploy --env needs the codec key")
	require.Contains(t, stderr, "--codec-key-file")
	// A deploy without variables needs no key.
	_, stderr, rc = gust(t, "fn", "deploy", "plain", "--tenant", "acme", "--code", code, "--address", p.address)
	require.Equal(t, 0, rc, stderr)

	// A raw client sees only ciphertext.
	err = raw.GetWorkflow(ctx, deployID, "").Get(ctx, &dep)
	require.Error(t, err, "the raw client cannot decode the result")

	// Every history but the echoing invocation's. Once visibility shows
	// the last deploy, the one refused before it would show too: there
	// are exactly the two deploys of vault that had the key.
	var ids []string
	itest.WaitFor(t, 30*time.Second, "visibility lists every workflow", func() bool {
		ids = listWorkflowIDs(ctx, t, raw)
		return slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(id, "fn-deploy-acme-plain-") })
	})
	vaultDeploys := 0
	for _, id := range ids {
		if strings.HasPrefix(id, "fn-deploy-acme-vault-") {
			vaultDeploys++
		}
	}
	require.Equal(t, 2, vaultDeploys, "the deploy without a key started nothing")
	require.Contains(t, ids, deployID)
	require.Contains(t, ids, listID)
	require.Contains(t, ids, echoID)
	totalEncrypted := 0
	for _, id := range ids {
		found, enc := historyHolds(ctx, t, raw, id, secret)
		totalEncrypted += enc
		if id == echoID {
			require.True(t, found, "the scan would see a secret in clear")
			continue
		}
		require.False(t, found, "workflow %s holds the secret in clear", id)
	}
	_, enc := historyHolds(ctx, t, raw, deployID, secret)
	require.GreaterOrEqual(t, enc, 4, "deploy: workflow input, activity input and result, workflow result")
	_, enc = historyHolds(ctx, t, raw, listID, secret)
	require.GreaterOrEqual(t, enc, 2, "list: activity result, workflow result")
	require.Greater(t, totalEncrypted, 6)
}

func listWorkflowIDs(ctx context.Context, t *testing.T, raw client.Client) []string {
	t.Helper()
	var ids []string
	var token []byte
	for {
		res, err := raw.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000, NextPageToken: token})
		require.NoError(t, err)
		for _, e := range res.Executions {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = res.NextPageToken; len(token) == 0 {
			return ids
		}
	}
}
