package ec2

import (
	"errors"
	"testing"
)

func TestMatchAttrs(t *testing.T) {
	attrs := map[string]string{"state": "available", "vpc-id": "vpc-1"}
	for _, c := range []struct {
		filters []filter
		want    bool
	}{
		{nil, true},
		{[]filter{{Name: "state", Values: []string{"pending", "available"}}}, true},
		{[]filter{{Name: "state", Values: []string{"available"}}, {Name: "vpc-id", Values: []string{"vpc-2"}}}, false},
	} {
		got, err := matchAttrs(c.filters, attrs)
		if err != nil || got != c.want {
			t.Errorf("%v: got %v, %v; want %v", c.filters, got, err, c.want)
		}
	}
	// An unknown filter is refused even after one that already fails.
	_, err := matchAttrs([]filter{{Name: "state", Values: []string{"gone"}}, {Name: "color", Values: []string{"red"}}}, attrs)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != codeInvalidParameterValue {
		t.Fatalf("unknown filter: got %v, want %s", err, codeInvalidParameterValue)
	}
}

func TestMissingID(t *testing.T) {
	items := []string{"a", "b"}
	same := func(s string) string { return s }
	if id, ok := missingID([]string{"b", "a"}, items, same); ok {
		t.Fatalf("all present: got %q missing", id)
	}
	if id, ok := missingID([]string{"a", "x", "y"}, items, same); !ok || id != "x" {
		t.Fatalf("got %q, %v; want the first missing, x", id, ok)
	}
	if _, ok := missingID(nil, items, same); ok {
		t.Fatal("no ids: nothing is missing")
	}
}
