package egress

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	many := strings.Repeat("a.example.com,", 63) + "a.example.com"
	tests := []struct {
		in, want string
	}{
		{"", "none"},
		{"   ", "none"},
		{"none", "none"},
		{" NONE ", "none"},
		{"all", "all"},
		{"All", "all"},
		{"example.com", "example.com"},
		{"Example.COM.", "example.com"},
		{"example.com:443", "example.com:443"},
		{"example.com:080", "example.com:80"},
		{"b.example.com, a.example.com:443 ,a.example.com:443", "a.example.com:443,b.example.com"},
		{"example.com,EXAMPLE.com.", "example.com"},
		{"*.Example.com", "*.example.com"},
		{"*.example.com:8443", "*.example.com:8443"},
		{"203.0.113.10", "203.0.113.10"},
		{"203.0.113.10:8080", "203.0.113.10:8080"},
		{"[2001:DB8::1]:443", "[2001:db8::1]:443"},
		{"[2001:db8:0:0::1]", "[2001:db8::1]"},
		{"[::ffff:203.0.113.10]:80", "203.0.113.10:80"},
		{"my_svc.internal-1.example", "my_svc.internal-1.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"localhost", "localhost"},
		{"a.example.com:65535,a.example.com:1", "a.example.com:1,a.example.com:65535"},
		{many, "a.example.com"},
	}
	for _, tt := range tests {
		p, err := ParsePolicy(tt.in)
		if err != nil {
			t.Errorf("ParsePolicy(%q): %v", tt.in, err)
			continue
		}
		if got := p.String(); got != tt.want {
			t.Errorf("ParsePolicy(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		again, err := ParsePolicy(p.String())
		if err != nil {
			t.Errorf("ParsePolicy(%q) of the canonical form of %q: %v", p.String(), tt.in, err)
			continue
		}
		if !reflect.DeepEqual(again, p) {
			t.Errorf("ParsePolicy(%q) = %#v, want %#v (round trip of %q)", p.String(), again, p, tt.in)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	long := strings.Repeat("a", 4000) + "." + strings.Repeat("b", 100)
	tooMany := strings.Repeat("a.example.com,", 64) + "a.example.com"
	tests := []struct {
		in   string
		want string // in the error
	}{
		{"a.example.com,,b.example.com", `entry 2 (""): empty entry`},
		{"a.example.com,", `entry 2 (""): empty entry`},
		{",", `entry 1 (""): empty entry`},
		{"a.example.com:0", `entry 1 ("a.example.com:0"): bad port "0": want 1 to 65535`},
		{"a.example.com:65536", `bad port "65536"`},
		{"a.example.com:99999999999999999999", `bad port`},
		{"a.example.com:", `bad port ""`},
		{"a.example.com:http", `bad port "http"`},
		{"a.example.com:+80", `bad port "+80"`},
		{"a.example.com:-1", `bad port "-1"`},
		{"a.example.com:80:90", "too many colons"},
		{"*", "wildcard"},
		{"*:443", "wildcard"},
		{"a.*.example.com", "wildcard"},
		{"*.*.example.com", "wildcard"},
		{"*example.com", "wildcard"},
		{"foo*.example.com", "wildcard"},
		{"*.", `("*."): after "*.": not a valid host name`},
		{"a .example.com", "whitespace"},
		{"a.example.com\t:443", "whitespace"},
		{"none,a.example.com", `entry 1 ("none"): "none" cannot be combined`},
		{"a.example.com,ALL", `"all" cannot be combined`},
		{"all,all", `"all" cannot be combined`},
		{"none,all", "cannot be combined"},
		{tooMany, "65 entries, over the limit of 64"},
		{long, "over the limit of 4096"},
		{"2001:db8::1", "must be in brackets"},
		{"[2001:db8::1", `missing "]"`},
		{"[203.0.113.1]:80", "brackets must hold an ipv6 address"},
		{"[example.com]", "brackets must hold an ipv6 address"},
		{"[2001:db8::1]443", `unexpected text after "]"`},
		{"[fe80::1%eth0]:443", "zoned"},
		{"256.1.1.1", `("256.1.1.1"): not a valid host name or ip address`},
		{"127.1", "not a valid host name or ip address"},
		{"-a.example.com", "not a valid host name"},
		{"a-.example.com", "not a valid host name"},
		{"a..example.com", "not a valid host name"},
		{"example.com..", "not a valid host name"},
		{"exa/mple.com", "not a valid host name"},
		{"http://example.com", "a host, not a url"},
		{"example.com/path", "not a valid host name"},
		{"bücher.example", "xn-- form"},
		{strings.Repeat("a", 64) + ".example.com", "not a valid host name"},
	}
	for _, tt := range tests {
		p, err := ParsePolicy(tt.in)
		if err == nil {
			t.Errorf("ParsePolicy(%q) = %q, want an error containing %q", tt.in, p, tt.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) {
			t.Errorf("ParsePolicy(%q) error %q, want it to contain %q", tt.in, msg, tt.want)
		}
		if strings.ContainsAny(msg, "\r\n") || msg[0] < 'a' || msg[0] > 'z' {
			t.Errorf("ParsePolicy(%q) error %q is not one lowercase line", tt.in, msg)
		}
	}
}

func TestPolicyNoneAll(t *testing.T) {
	for _, tt := range []struct {
		in        string
		none, all bool
	}{
		{"", true, false},
		{"none", true, false},
		{"all", false, true},
		{"example.com", false, false},
	} {
		p, err := ParsePolicy(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if p.None() != tt.none || p.All() != tt.all {
			t.Errorf("ParsePolicy(%q): None() = %v, All() = %v; want %v, %v", tt.in, p.None(), p.All(), tt.none, tt.all)
		}
	}
	var zero Policy
	if !zero.None() || zero.String() != "none" || zero.Allows("example.com", 443) {
		t.Errorf("the zero Policy is not none: %q", zero)
	}
}

func TestPolicyAllows(t *testing.T) {
	list := "api.example.com,*.svc.example.com:443,203.0.113.10:8080,[2001:db8::1]:443,Other.Example.org."
	tests := []struct {
		policy string
		host   string
		port   int
		want   bool
	}{
		{list, "api.example.com", 80, true},
		{list, "api.example.com", 443, true},
		{list, "API.Example.COM", 443, true},
		{list, "api.example.com.", 443, true},
		{list, "api.example.com", 0, false},
		{list, "api.example.com", 65536, false},
		{list, "api.example.com", -1, false},
		{list, "example.com", 80, false},
		{list, "x.api.example.com", 80, false},
		{list, "other.example.org", 1, true},
		{list, "OTHER.example.org.", 65535, true},

		{list, "x.svc.example.com", 443, true},
		{list, "a.b.svc.example.com", 443, true},
		{list, "X.SVC.example.com.", 443, true},
		{list, "svc.example.com", 443, false},
		{list, "x.svc.example.com", 80, false},
		{list, "xsvc.example.com", 443, false},
		{list, "x.svc.example.com.evil.com", 443, false},

		{list, "203.0.113.10", 8080, true},
		{list, "203.0.113.10", 80, false},
		{list, "::ffff:203.0.113.10", 8080, true},
		{list, "203.0.113.11", 8080, false},
		{list, "2001:db8::1", 443, true},
		{list, "[2001:DB8::1]", 443, true},
		{list, "2001:db8:0:0:0:0:0:1", 443, true},
		{list, "2001:db8::1", 80, false},
		{list, "2001:db8::2", 443, false},
		{list, "[2001:db8::1", 443, false},
		{list, "2001:db8::1%eth0", 443, false},

		{list, "evil.com", 443, false},
		{list, "", 443, false},
		{list, "api.example.com:80", 80, false},
		{list, "api.example.com/x", 80, false},

		// Names and addresses never match each other.
		{"example.com", "93.184.215.14", 443, false},
		{"93.184.215.14", "example.com", 443, false},
		{"*.example.com", "1.example.com", 443, true},

		{"none", "example.com", 443, false},
		{"", "203.0.113.10", 80, false},

		// all is the policy only: the proxy refuses forbidden addresses.
		{"all", "evil.com", 443, true},
		{"all", "127.0.0.1", 80, true},
		{"all", "[::1]", 80, true},
		{"all", "evil.com", 0, false},
		{"all", "", 443, false},
		{"all", "not a host", 443, false},
	}
	for _, tt := range tests {
		p, err := ParsePolicy(tt.policy)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Allows(tt.host, tt.port); got != tt.want {
			t.Errorf("ParsePolicy(%q).Allows(%q, %d) = %v, want %v", tt.policy, tt.host, tt.port, got, tt.want)
		}
	}
}
