package integration

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/workflows"
)

// startPingWorker runs a worker with just the platform's smoke workflow, so
// this test depends on the foundation alone.
func startPingWorker(t *testing.T, c client.Client) sdkworker.Worker {
	t.Helper()
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{})
	w.RegisterWorkflow(workflows.PingWorkflow)
	w.RegisterActivity(&activities.Platform{})
	require.NoError(t, w.Start())
	return w
}

func dialServer(t *testing.T, s *devserver.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddress(), Namespace: "default", Logger: itest.QuietLogger()})
	require.NoError(t, err)
	return c
}

// TestDevServerHistorySurvivesRestart is the foundation's durability
// promise: a completed workflow's history and a workflow waiting on a timer
// both survive a full server restart on the same SQLite file, and the
// waiting one finishes afterwards.
func TestDevServerHistorySurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "temporal.db")

	s, err := devserver.Start(devserver.Config{DatabaseFile: db})
	require.NoError(t, err)
	c := dialServer(t, s)
	w := startPingWorker(t, c)

	done, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "before-restart", TaskQueue: workflows.TaskQueue},
		workflows.PingWorkflow, workflows.PingInput{Message: "one"})
	require.NoError(t, err)
	var first workflows.PingResult
	require.NoError(t, done.Get(ctx, &first))
	require.Equal(t, "one", first.Message)

	// A second workflow is parked on a durable timer when the server stops.
	waiting, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "across-restart", TaskQueue: workflows.TaskQueue},
		workflows.PingWorkflow, workflows.PingInput{Message: "two", Wait: 3 * time.Second})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err := c.DescribeWorkflowExecution(ctx, "across-restart", "")
		return err == nil && d.GetPendingWorkflowTask() == nil && d.GetWorkflowExecutionInfo().GetHistoryLength() >= 5
	}, 20*time.Second, 50*time.Millisecond, "workflow never reached its timer")
	firstEvents := itest.HistoryLength(ctx, t, c, "before-restart")

	w.Stop()
	c.Close()
	require.NoError(t, s.Stop())

	s, err = devserver.Start(devserver.Config{DatabaseFile: db})
	require.NoError(t, err)
	defer s.Stop()
	c = dialServer(t, s)
	defer c.Close()

	d, err := c.DescribeWorkflowExecution(ctx, "before-restart", done.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.GetWorkflowExecutionInfo().GetStatus())
	require.Equal(t, firstEvents, itest.HistoryLength(ctx, t, c, "before-restart"), "history changed across restart")

	w = startPingWorker(t, c)
	defer w.Stop()
	var second workflows.PingResult
	require.NoError(t, c.GetWorkflow(ctx, "across-restart", waiting.GetRunID()).Get(ctx, &second))
	require.Equal(t, "two", second.Message)
	require.GreaterOrEqual(t, second.Ended.Sub(second.Started), 3*time.Second)
}

func TestDevServerRejectsLockedDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "temporal.db")
	s, err := devserver.Start(devserver.Config{DatabaseFile: db})
	require.NoError(t, err)
	defer s.Stop()
	before := fileHash(t, db)

	_, err = devserver.Start(devserver.Config{DatabaseFile: db})
	require.Error(t, err)
	require.True(t, errors.Is(err, devserver.ErrDatabaseLocked), "got %v", err)
	require.Contains(t, err.Error(), db)
	_ = before // the running server may write; what matters is that the second did not start
}

func TestDevServerRejectsCorruptDatabase(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"garbage":        []byte("this is not a sqlite database, just text that is long enough to look like a header......"),
		"truncated-head": []byte("SQLite format 3\x00\x10\x00\x01\x01"),
	} {
		t.Run(name, func(t *testing.T) {
			db := filepath.Join(dir, name+".db")
			require.NoError(t, os.WriteFile(db, content, 0o600))
			_, err := devserver.Start(devserver.Config{DatabaseFile: db})
			require.Error(t, err)
			require.Contains(t, err.Error(), db)
			got, err := os.ReadFile(db)
			require.NoError(t, err)
			require.Equal(t, content, got, "a corrupt database file must never be rewritten")
		})
	}
}

func TestDevServerRejectsForeignSQLiteDatabase(t *testing.T) {
	// A valid SQLite file of another application: refused, untouched.
	db := filepath.Join(t.TempDir(), "other.db")
	writeForeignSQLite(t, db)
	before := fileHash(t, db)
	_, err := devserver.Start(devserver.Config{DatabaseFile: db})
	require.ErrorContains(t, err, "not a temporal database")
	require.Equal(t, before, fileHash(t, db))
}

func TestDevServerRejectsPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = devserver.Start(devserver.Config{Port: port})
	require.ErrorContains(t, err, "frontend port "+strconv.Itoa(port)+" is not available")
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}
