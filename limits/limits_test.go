package limits

import (
	"strings"
	"testing"
)

func TestValidSubTenantID(t *testing.T) {
	cases := map[string]bool{
		"":                              false,
		"a":                             true,
		strings.Repeat("a", 256):        true,
		strings.Repeat("a", 257):        false,
		"customer-42":                   true,
		"org/team:user=x+y@example.com": true,
		"a b":                           true,
		"a  b":                          true,
		" a":                            false, // HTTP drops leading and trailing spaces
		"a ":                            false,
		" ":                             false,
		"../../etc":                     true, // allowed: never a path
		"a\tb":                          false,
		"a\nb":                          false,
		"a,b":                           false,
		"a;b":                           false,
		"a#b":                           false,
		"a%b":                           false,
		"a?b":                           false,
		"a&b":                           false,
		`a"b`:                           false,
		"a'b":                           false,
		`a\b`:                           false,
		"a*b":                           false,
		"a~b":                           false,
		"café":                          false,
		"a\x00b":                        false,
	}
	for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/=+-@ " {
		cases["x"+string(c)+"x"] = true
	}
	for id, want := range cases {
		if got := ValidSubTenantID(id); got != want {
			t.Errorf("ValidSubTenantID(%q) = %v, want %v", id, got, want)
		}
	}
	// Every other printable ASCII character is refused.
	for c := byte(0x20); c < 0x7f; c++ {
		if strings.IndexByte(" ._:/=+-@", c) >= 0 || IsAlnum(c) {
			continue
		}
		if id := "x" + string(c) + "x"; ValidSubTenantID(id) {
			t.Errorf("ValidSubTenantID(%q) = true", id)
		}
	}
}

func TestValidNameAndFunctionName(t *testing.T) {
	cases := []struct {
		s                  string
		name, functionName bool
	}{
		{"", false, false},
		{"a", true, true},
		{"acme_1-x", true, true},
		{strings.Repeat("f", 64), true, true},
		{strings.Repeat("f", 65), false, false},
		{"-acme", false, true}, // Lambda takes it; gust's API does not
		{"_acme", false, true},
		{"a.b", false, false},
		{"a/b", false, false},
		{"..", false, false},
		{"a b", false, false},
		{"café", false, false},
	}
	for _, c := range cases {
		if got := ValidName(c.s); got != c.name {
			t.Errorf("ValidName(%q) = %v, want %v", c.s, got, c.name)
		}
		if got := ValidFunctionName(c.s); got != c.functionName {
			t.Errorf("ValidFunctionName(%q) = %v, want %v", c.s, got, c.functionName)
		}
	}
}

func TestValidRequestID(t *testing.T) {
	cases := map[string]bool{
		"":                                     false,
		"0f8fad5b-d9cb-469f-a165-70867728950e": true,
		"req_1.2:3":                            true,
		strings.Repeat("r", 128):               true,
		strings.Repeat("r", 129):               false,
		"a/b":                                  false,
		"a b":                                  false,
		"a@b":                                  false,
	}
	for id, want := range cases {
		if got := ValidRequestID(id); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}
