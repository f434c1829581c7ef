package awsconfig

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/smithy-go/logging"
)

func TestIsLoopback(t *testing.T) {
	for endpoint, want := range map[string]bool{
		"http://127.0.0.1:4566":     true,
		"http://localhost:4566":     true,
		"http://[::1]:4566":         true,
		"https://ec2.amazonaws.com": false,
		"http://10.0.0.5:4566":      false,
		"::not a url":               false,
	} {
		if got := IsLoopback(endpoint); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", endpoint, got, want)
		}
	}
}

func TestLoadWithEndpointWorksWithoutAnyAWSSetup(t *testing.T) {
	// An empty environment: no region, no credentials, no config files.
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	cfg, err := Load(context.Background(), Options{Endpoint: "http://127.0.0.1:4566"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != DefaultLocalRegion {
		t.Errorf("region = %q, want %q", cfg.Region, DefaultLocalRegion)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("a local endpoint must get fallback credentials: %v", err)
	}
	if creds.AccessKeyID != "test" {
		t.Errorf("access key = %q, want the dummy \"test\"", creds.AccessKeyID)
	}
}

func TestSDKLogLinesGoToSlogAtDebug(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	cfg, err := Load(context.Background(), Options{Endpoint: "http://127.0.0.1:4566"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger.Logf(logging.Warn, "failed to discard %d bytes", 12)
	out := buf.String()
	for _, want := range []string{"level=DEBUG", `msg="failed to discard 12 bytes"`, "classification=WARN"} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %q lacks %q", out, want)
		}
	}
}
