package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

// Limits on a policy's text, so a stored policy stays small and checking a
// connection against it stays cheap.
const (
	maxPolicyBytes   = 4096
	maxPolicyEntries = 64
)

// Policy is the set of destinations a function may connect to. The zero
// Policy allows nothing.
//
// Its text forms are a public contract (gust fn deploy --egress): "none" or
// "" (nothing), "all" (any host), or a comma-separated list of HOST[:PORT]
// entries, where HOST is a DNS name, an IPv4 address, a bracketed IPv6
// address or a wildcard *.example.com, and no port means any port.
//
// A Policy says nothing about which addresses are safe: the Proxy refuses
// loopback, link-local and this machine's addresses whatever the Policy
// allows.
type Policy struct {
	all bool
	// entries are sorted by their String and hold no duplicates, so
	// String is canonical; none is !all with no entries.
	entries []entry
}

// entry is one HOST[:PORT] of a policy.
type entry struct {
	// name is a DNS name, lowercase without a trailing dot; for a wildcard
	// it is the domain below which names match. Empty for an address.
	name     string
	wildcard bool
	// addr is the entry's IP address, never IPv4-mapped and never zoned;
	// invalid for a name.
	addr netip.Addr
	// port is 1..65535, or 0 for any port.
	port int
}

// ParsePolicy parses an egress policy in any of its text forms. Errors are
// one line and name the bad entry.
func ParsePolicy(s string) (Policy, error) {
	if len(s) > maxPolicyBytes {
		return Policy{}, fmt.Errorf("egress policy is %d bytes long, over the limit of %d", len(s), maxPolicyBytes)
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none":
		return Policy{}, nil
	case "all":
		return Policy{all: true}, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxPolicyEntries {
		return Policy{}, fmt.Errorf("egress policy has %d entries, over the limit of %d", len(parts), maxPolicyEntries)
	}
	entries := make([]entry, 0, len(parts))
	for i, part := range parts {
		e, err := parseEntry(strings.TrimSpace(part))
		if err != nil {
			return Policy{}, fmt.Errorf("egress policy entry %d (%q): %w", i+1, strings.TrimSpace(part), err)
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.String(), b.String()) })
	entries = slices.CompactFunc(entries, func(a, b entry) bool { return a.String() == b.String() })
	return Policy{entries: entries}, nil
}

// parseEntry parses one HOST[:PORT] entry, already trimmed.
func parseEntry(s string) (entry, error) {
	switch {
	case s == "":
		return entry{}, errors.New("empty entry")
	case strings.ContainsFunc(s, unicode.IsSpace):
		return entry{}, errors.New("whitespace inside an entry")
	case strings.EqualFold(s, "none"), strings.EqualFold(s, "all"):
		return entry{}, fmt.Errorf("%q cannot be combined with other entries", strings.ToLower(s))
	case strings.Contains(s, "://"):
		return entry{}, errors.New("want a host, not a url")
	}
	host, port, err := splitEntry(s)
	if err != nil {
		return entry{}, err
	}
	e := entry{port: port}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if strings.Contains(rest, "*") {
			return entry{}, errors.New(`a wildcard is only allowed as one leading "*."`)
		}
		name, err := canonicalName(rest)
		if err != nil {
			return entry{}, fmt.Errorf("after \"*.\": %w", err)
		}
		e.name, e.wildcard = name, true
		return e, nil
	}
	if strings.Contains(host, "*") {
		return entry{}, errors.New(`a wildcard is only allowed as one leading "*."`)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return entry{}, errors.New("zoned ipv6 addresses are not allowed")
		}
		e.addr = a.Unmap()
		return e, nil
	}
	name, err := canonicalName(host)
	if err != nil {
		return entry{}, err
	}
	e.name = name
	return e, nil
}

// splitEntry splits HOST[:PORT] into the host, brackets removed, and the
// port (0 when absent). Only an IPv6 address may be bracketed and an IPv6
// address must be, so "::1" is never mistaken for a host and a port.
func splitEntry(s string) (host string, port int, err error) {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		addr, rest, ok := strings.Cut(inner, "]")
		if !ok {
			return "", 0, errors.New(`missing "]" after an ipv6 address`)
		}
		if a, err := netip.ParseAddr(addr); err != nil || !a.Is6() {
			return "", 0, errors.New("brackets must hold an ipv6 address")
		}
		switch {
		case rest == "":
			return addr, 0, nil
		case rest[0] != ':':
			return "", 0, errors.New(`unexpected text after "]"`)
		}
		port, err := parsePort(rest[1:])
		return addr, port, err
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, 0, nil
	case 1:
		host, p, _ := strings.Cut(s, ":")
		port, err := parsePort(p)
		return host, port, err
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", 0, errors.New("an ipv6 address must be in brackets, as in [2001:db8::1]:443")
	}
	return "", 0, errors.New("too many colons")
}

// parsePort parses a decimal port, 1..65535.
func parsePort(s string) (int, error) {
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' || n > 65535 {
			n = -1
			break
		}
		n = n*10 + int(c-'0')
	}
	if s == "" || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q: want 1 to 65535", s)
	}
	return n, nil
}

// canonicalName checks that s is a DNS host name and returns it lowercase
// without a trailing dot. Names are ASCII (international names in their
// xn-- form); labels are letters, digits, '-' and '_', 1 to 63 bytes, not
// starting or ending with '-'; the last label is not all digits, so a
// malformed IPv4 address such as 256.1.1.1 or 127.1 is never taken for a
// name.
func canonicalName(s string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if strings.ContainsFunc(name, func(r rune) bool { return r > unicode.MaxASCII }) {
		return "", errors.New("not a valid host name: write international names in their xn-- form")
	}
	labels := strings.Split(name, ".")
	invalid := func(l string) bool { return !validLabel(l) }
	if len(name) > 253 || slices.ContainsFunc(labels, invalid) || strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", errors.New("not a valid host name or ip address")
	}
	return name, nil
}

// validLabel reports whether l is one lowercase label of a host name.
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range []byte(l) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

// canonicalHost puts a destination host in the form policies compare: an
// address (unmapped, unzoned) or a canonical name. host may be bracketed.
func canonicalHost(host string) (name string, addr netip.Addr, err error) {
	if inner, ok := strings.CutPrefix(host, "["); ok {
		host, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return "", netip.Addr{}, errors.New("not a valid host")
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", netip.Addr{}, errors.New("zoned ipv6 addresses are not allowed")
		}
		return "", a.Unmap(), nil
	}
	if strings.Contains(host, ":") {
		return "", netip.Addr{}, errors.New("not a valid host")
	}
	name, err = canonicalName(host)
	return name, netip.Addr{}, err
}

// None reports whether p allows no destination at all.
func (p Policy) None() bool { return !p.all && len(p.entries) == 0 }

// All reports whether p allows any destination.
func (p Policy) All() bool { return p.all }

// Allows reports whether p lets a function connect to host:port. host is a
// DNS name (any case, trailing dot ignored) or an IP address, bracketed or
// not; names and addresses never match each other, since which addresses a
// name has is the resolver's say, not the policy's. A host that is neither
// is never allowed, even by "all".
func (p Policy) Allows(host string, port int) bool {
	if port < 1 || port > 65535 || p.None() {
		return false
	}
	name, addr, err := canonicalHost(host)
	if err != nil {
		return false
	}
	if p.all {
		return true
	}
	for _, e := range p.entries {
		if e.matches(name, addr, port) {
			return true
		}
	}
	return false
}

// matches reports whether e allows a canonical host and port.
func (e entry) matches(name string, addr netip.Addr, port int) bool {
	switch {
	case e.port != 0 && e.port != port:
		return false
	case e.addr.IsValid():
		return addr == e.addr
	case addr.IsValid():
		return false
	case e.wildcard:
		return len(name) > len(e.name) && strings.HasSuffix(name, "."+e.name)
	}
	return name == e.name
}

// String returns p's canonical text: "none", "all", or its entries
// lowercase, sorted and without duplicates. ParsePolicy(p.String()) is p.
func (p Policy) String() string {
	switch {
	case p.all:
		return "all"
	case len(p.entries) == 0:
		return "none"
	}
	parts := make([]string, len(p.entries))
	for i, e := range p.entries {
		parts[i] = e.String()
	}
	return strings.Join(parts, ",")
}

// String returns e in canonical HOST[:PORT] form.
func (e entry) String() string {
	var host string
	switch {
	case e.addr.Is6():
		host = "[" + e.addr.String() + "]"
	case e.addr.IsValid():
		host = e.addr.String()
	case e.wildcard:
		host = "*." + e.name
	default:
		host = e.name
	}
	if e.port == 0 {
		return host
	}
	return fmt.Sprintf("%s:%d", host, e.port)
}
