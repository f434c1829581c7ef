package egress

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// ownAddrsTTL is how long the list of this machine's addresses is reused.
// Addresses change rarely (DHCP, a new bridge); a few seconds keeps the
// check cheap without trusting a stale list for long.
const ownAddrsTTL = 5 * time.Second

var (
	// thisNetwork is 0.0.0.0/8, "this host on this network": Linux
	// delivers a connection to 0.0.0.0 to this machine.
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	// ipv4Compatible is ::/96, the deprecated IPv4-compatible IPv6
	// addresses (::127.0.0.1) with :: and ::1; nothing legitimate lives
	// there, so all of it is refused.
	ipv4Compatible = netip.MustParsePrefix("::/96")
	// nat64 is the well-known NAT64 prefix, whose addresses embed an IPv4
	// destination that a NAT64 gateway connects to.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// broadcast is the limited broadcast address.
	broadcast = netip.MustParseAddr("255.255.255.255")
	// metadataAddrs are cloud metadata endpoints outside the link-local
	// ranges: AWS's IPv6 one and Alibaba Cloud's.
	metadataAddrs = []netip.Addr{
		netip.MustParseAddr("fd00:ec2::254"),
		netip.MustParseAddr("100.100.100.200"),
	}
)

// IsForbidden reports whether ip is a destination no function may reach,
// whatever its policy: loopback, unspecified, link-local (169.254.0.0/16,
// where cloud metadata lives, and fe80::/10), multicast, 0.0.0.0/8, the
// broadcast address, known cloud metadata addresses, IPv4-mapped and NAT64
// forms of these, all of ::/96, and every address of this
// machine's interfaces, since a connection to any of them reaches gust's
// own services. Anything that is not an IP address is forbidden, and so is
// everything when this machine's addresses cannot be listed: the check
// fails closed.
func IsForbidden(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return true
	}
	a = a.Unmap()
	return forbiddenRange(a) || ownAddrs.has(a)
}

// forbiddenRange reports whether a, unmapped, is in a range that is never
// a legitimate destination, wherever this machine is.
func forbiddenRange(a netip.Addr) bool {
	if nat64.Contains(a) {
		b := a.As16()
		return forbiddenRange(netip.AddrFrom4([4]byte(b[12:])))
	}
	return ipv4Compatible.Contains(a) || a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() ||
		a.IsMulticast() || thisNetwork.Contains(a) || a == broadcast ||
		containsAddr(metadataAddrs, a)
}

// containsAddr reports whether list holds a, ignoring zones.
func containsAddr(list []netip.Addr, a netip.Addr) bool {
	a = a.WithZone("")
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}

// ownAddrs caches this machine's interface addresses. Its zero value is
// ready to use.
var ownAddrs addrCache

// addrCache is a list of this machine's addresses, refreshed after
// ownAddrsTTL.
type addrCache struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool // unmapped, unzoned; nil when listing failed
}

// has reports whether a is one of this machine's addresses, or true when
// they cannot be listed.
func (c *addrCache) has(a netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addrs == nil || time.Since(c.at) > ownAddrsTTL {
		c.addrs, c.at = listOwnAddrs(), time.Now()
	}
	return c.addrs == nil || c.addrs[a.WithZone("")]
}

// listOwnAddrs returns this machine's interface addresses, or nil if they
// cannot be listed.
func listOwnAddrs() map[netip.Addr]bool {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	addrs := make(map[netip.Addr]bool, len(ifAddrs))
	for _, ia := range ifAddrs {
		var ip net.IP
		switch v := ia.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs[a.Unmap().WithZone("")] = true
		}
	}
	return addrs
}
