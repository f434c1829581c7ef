package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHandlerArgs: a bare gust is the handler inside an execution
// environment and only there; other command lines are never rewritten.
func TestHandlerArgs(t *testing.T) {
	t.Setenv(runtimeAPIEnv, "")
	assert.Equal(t, []string{"gust"}, handlerArgs([]string{"gust"}), "outside an environment a bare gust prints help")

	t.Setenv(runtimeAPIEnv, "127.0.0.1:9001")
	assert.Equal(t, []string{"/var/runtime/bootstrap", "handler"}, handlerArgs([]string{"/var/runtime/bootstrap"}))
	assert.Equal(t, []string{"gust", "fn", "list"}, handlerArgs([]string{"gust", "fn", "list"}))
	assert.Equal(t, []string{"gust", "handler"}, handlerArgs([]string{"gust", "handler"}))
}
