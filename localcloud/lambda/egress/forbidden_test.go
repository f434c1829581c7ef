package egress

import (
	"net"
	"testing"
)

func TestIsForbidden(t *testing.T) {
	forbidden := []string{
		"127.0.0.1", "127.5.6.7", "::1",
		"0.0.0.0", "::", "0.1.2.3",
		"169.254.169.254", "169.254.0.1", "fe80::1", "febf::1",
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1",
		"255.255.255.255",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
		"::127.0.0.1", "::203.0.113.10",
		"64:ff9b::127.0.0.1", "64:ff9b::169.254.169.254",
		"fd00:ec2::254", "100.100.100.200",
	}
	for _, s := range forbidden {
		if !IsForbidden(net.ParseIP(s)) {
			t.Errorf("IsForbidden(%s) = false, want true", s)
		}
	}
	allowed := []string{
		"203.0.113.10", "198.51.100.7", "8.8.8.8",
		"2001:db8::1", "::ffff:203.0.113.10", "64:ff9b::203.0.113.10",
		"fd00:ec2::253", "100.100.100.201",
	}
	for _, s := range allowed {
		if IsForbidden(net.ParseIP(s)) {
			t.Errorf("IsForbidden(%s) = true, want false", s)
		}
	}
	for _, ip := range []net.IP{nil, {1, 2, 3}} {
		if !IsForbidden(ip) {
			t.Errorf("IsForbidden(%#v) = false, want true for what is not an address", ip)
		}
	}
}

// TestIsForbiddenOwnAddresses checks that every address of this machine is
// forbidden, the ones outside the always-forbidden ranges included.
func TestIsForbiddenOwnAddresses(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if !IsForbidden(ipn.IP) {
			t.Errorf("IsForbidden(%s) = false for an address of this machine", ipn.IP)
		}
		if !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			checked++
		}
	}
	if checked == 0 {
		t.Skip("this machine has no address outside loopback and link-local")
	}
}
