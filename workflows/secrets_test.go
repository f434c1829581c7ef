package workflows

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/protobuf/proto"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/codec"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

// recordingConverter keeps every payload the converter under test hands
// to Temporal: what the server would store in history.
type recordingConverter struct {
	converter.DataConverter
	mu   sync.Mutex
	seen []*commonpb.Payload
}

func (r *recordingConverter) ToPayload(v any) (*commonpb.Payload, error) {
	p, err := r.DataConverter.ToPayload(v)
	if p != nil {
		r.mu.Lock()
		r.seen = append(r.seen, proto.Clone(p).(*commonpb.Payload))
		r.mu.Unlock()
	}
	return p, err
}

func (r *recordingConverter) ToPayloads(vs ...any) (*commonpb.Payloads, error) {
	ps, err := r.DataConverter.ToPayloads(vs...)
	if ps != nil {
		r.mu.Lock()
		for _, p := range ps.Payloads {
			r.seen = append(r.seen, proto.Clone(p).(*commonpb.Payload))
		}
		r.mu.Unlock()
	}
	return ps, err
}

// leaks returns the recorded payloads, as bytes on the wire, that hold
// secret in clear or base64, and how many payloads were encrypted.
func (r *recordingConverter) leaks(t *testing.T, secret string) (leaks []string, encrypted int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.seen {
		wire, err := proto.Marshal(p)
		require.NoError(t, err)
		for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
			if strings.Contains(string(wire), form) {
				leaks = append(leaks, string(wire))
			}
		}
		if string(p.Metadata[converter.MetadataEncoding]) == codec.EncodingEncrypted {
			encrypted++
		}
	}
	return leaks, encrypted
}

func codecTestKey(t *testing.T) codec.Key {
	t.Helper()
	raw := make([]byte, codec.KeySize)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	k, err := codec.NewKey(raw)
	require.NoError(t, err)
	return k
}

// TestFunctionSecretsAreEncryptedInHistory runs the deploy and list
// workflows with their real activities over the fake provider and the
// codec data converter, and checks every payload they hand to Temporal:
// the variable's value never appears, while the provider receives it and
// the caller reads it back.
func TestFunctionSecretsAreEncryptedInHistory(t *testing.T) {
	const secret = "sk_live_51HrTz9QwErTy"
	provider := fake.NewFunctions()
	rec := &recordingConverter{DataConverter: codec.DataConverter(codecTestKey(t))}
	newEnv := func() *testsuite.TestWorkflowEnvironment {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetDataConverter(rec)
		env.RegisterActivity(&activities.Functions{Functions: provider})
		return env
	}

	in := validDeploy()
	in.Env = map[string]string{"STRIPE_KEY": secret, "MODE": "prod"}
	env := newEnv()
	env.ExecuteWorkflow(DeployFunctionWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	var deployed DeployResult
	require.NoError(t, env.GetWorkflowResult(&deployed))
	require.Equal(t, secret, deployed.Function.Env["STRIPE_KEY"], "a caller with the key reads the result")

	fn, err := provider.Get(context.Background(), "acme", "hello")
	require.NoError(t, err)
	require.Equal(t, secret, fn.Env["STRIPE_KEY"], "the provider received the variable")

	env = newEnv()
	env.ExecuteWorkflow(ListFunctionsWorkflow, ListFunctionsInput{Tenant: "acme"})
	var listed ListFunctionsResult
	require.NoError(t, env.GetWorkflowResult(&listed))
	require.Len(t, listed.Functions, 1)
	require.Equal(t, secret, listed.Functions[0].Env["STRIPE_KEY"])

	// A dry run reads only the function's tenancy and version
	// (CheckFunction), so no variable reaches the invocation's history, in
	// either activity mode.
	for _, mode := range []ActivityMode{ActivityModeLocal, ActivityModeRegular} {
		env = newEnv()
		dry := validInvoke(mode)
		dry.DryRun = true
		env.ExecuteWorkflow(InvokeWorkflow, dry)
		require.NoError(t, env.GetWorkflowError())
	}

	leaks, encrypted := rec.leaks(t, secret)
	require.Empty(t, leaks, "payloads holding the secret in clear")
	// Deploy: workflow input, activity input, activity result, workflow
	// result; list: activity result, workflow result.
	require.GreaterOrEqual(t, encrypted, 6)
}

// Payloads without secrets stay as the default converter writes them, so
// the Web UI shows them.
func TestFunctionsWithoutSecretsStayReadable(t *testing.T) {
	provider := fake.NewFunctions()
	rec := &recordingConverter{DataConverter: codec.DataConverter(codecTestKey(t))}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetDataConverter(rec)
	env.RegisterActivity(&activities.Functions{Functions: provider})
	in := validDeploy()
	in.Env = nil
	env.ExecuteWorkflow(DeployFunctionWorkflow, in)
	require.NoError(t, env.GetWorkflowError())

	_, encrypted := rec.leaks(t, "unused")
	require.Zero(t, encrypted)
	require.NotEmpty(t, rec.seen)
	for _, p := range rec.seen {
		require.Equal(t, "json/plain", string(p.Metadata[converter.MetadataEncoding]))
	}
}

// A worker (or client) with no codec key never writes a secret in clear:
// the deploy cannot even start.
func TestDeployWithSecretsNeedsAKey(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetDataConverter(codec.DataConverter())
	env.RegisterActivity(&activities.Functions{Functions: fake.NewFunctions()})
	in := validDeploy()
	in.Env = map[string]string{"TOKEN": "t0ps3cret"}
	// The test environment panics where a client's ExecuteWorkflow returns
	// the error: encoding the input fails before anything is sent.
	require.PanicsWithError(t, "codec: a payload carries secrets and no codec key is configured to encrypt it", func() {
		env.ExecuteWorkflow(DeployFunctionWorkflow, in)
	})
}

// The messages that may carry variables say so; the rest never carry any.
func TestContainsSecrets(t *testing.T) {
	with := map[string]string{"K": "v"}
	for _, c := range []struct {
		v    codec.SecretCarrier
		want bool
	}{
		{DeployInput{}, false},
		{DeployInput{Env: with}, true},
		{DeployResult{Function: providers.Function{Env: with}}, true},
		{DeployResult{}, false},
		{ListFunctionsResult{Functions: []providers.Function{{}, {Env: with}}}, true},
		{ListFunctionsResult{Functions: []providers.Function{{}}}, false},
		{activities.DeployFunctionInput{Env: with}, true},
		{activities.FunctionConfig{Env: with}, true},
		{activities.FunctionList{{Env: with}}, true},
		{activities.FunctionList(nil), false},
	} {
		b, _ := json.Marshal(c.v)
		require.Equal(t, c.want, c.v.ContainsSecrets(), "%T %s", c.v, b)
	}
}
