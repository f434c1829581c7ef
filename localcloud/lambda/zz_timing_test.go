package lambda_test

import (
	"testing"
	"time"
)

func TestZZTiming(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	st := time.Now()
	createFn(t, c, "a", fnOpts{})
	t.Log("create", time.Since(st))
	st = time.Now()
	createFn(t, c, "b", fnOpts{})
	t.Log("create same code", time.Since(st))
	for i := 0; i < 3; i++ {
		st = time.Now()
		r := mustInvoke(t, c, "a", "", nil)
		t.Log("invoke", r.cold, time.Since(st))
	}
}
