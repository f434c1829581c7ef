package localcloud

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// HealthPath is the local cloud's health endpoint, LocalStack's
// /_localstack/health for gust: GET (or HEAD) it, unauthenticated, for
// HealthStatus as JSON.
const HealthPath = "/_gust/health"

// Service states the health endpoint reports.
const (
	StateRunning = "running"
	// StateDegraded is Lambda's when it serves its API but cannot run
	// functions on this machine (no sandbox); the start-up log says why.
	StateDegraded = "degraded"
	StateError    = "error"
)

// HealthStatus is the health endpoint's answer. It names services and
// their states only: nothing about any tenant, and no error text (which
// can name the machine's paths); the log has those.
type HealthStatus struct {
	Services map[string]string `json:"services"`
	Edition  string            `json:"edition"`
	Version  string            `json:"version,omitempty"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st := HealthStatus{Edition: "gust", Version: s.version, Services: map[string]string{
		"ec2": StateRunning, "lambda": StateRunning, "sts": StateRunning}}
	if s.ec2.Ping(ctx) != nil {
		st.Services["ec2"] = StateError
	}
	if s.lambda.Ping(ctx) != nil {
		st.Services["lambda"] = StateError
	} else if _, err := s.lambda.Isolation(); err != nil {
		st.Services["lambda"] = StateDegraded
	}
	b, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write(append(b, '\n'))
}
