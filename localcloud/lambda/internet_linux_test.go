//go:build linux

package lambda_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// internet stands for the internet in the egress tests: an HTTP server in a
// network namespace of its own, joined to the host's by a veth pair in a
// private /30. The egress proxy refuses this machine's own addresses, so
// the server must live at an address that is not one: the far end of the
// pair. Built with the kernel's netlink interface directly, so it needs no
// tool (ip) and no library beyond x/sys.
type internet struct {
	// ip is the server's address; hostIP the host's end of the pair.
	ip, hostIP netip.Addr
	hostIf     string

	mu   sync.Mutex
	seen []string // "port path" of every request, in order
}

// vethInfoPeer is VETH_INFO_PEER (linux/veth.h), which x/sys lacks.
const vethInfoPeer = 1

// startInternet creates the namespace, the veth pair and the server,
// listening on ports of the server's address, and removes them all when
// the test ends.
func startInternet(t *testing.T, ports ...int) *internet {
	t.Helper()
	pid := os.Getpid()
	// 10.213.B.C/30: the host is .C+1, the server .C+2.
	b, c := byte(pid>>6), byte(pid&0x3f)*4
	in := &internet{
		hostIP: netip.AddrFrom4([4]byte{10, 213, b, c + 1}),
		ip:     netip.AddrFrom4([4]byte{10, 213, b, c + 2}),
		hostIf: fmt.Sprintf("gst%x", pid),
	}
	subnet := netip.PrefixFrom(in.hostIP, 30).Masked()
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, ok := netip.AddrFromSlice(n.IP); ok && subnet.Contains(p.Unmap()) {
				t.Fatalf("this machine already has %v in %v, the test's subnet", n, subnet)
			}
		}
	}

	ns, err := newNetns()
	require.NoError(t, err)
	t.Cleanup(func() { ns.Close() })

	host, err := openRtnl()
	require.NoError(t, err)
	defer host.close()
	const peer = "inet0"
	peerInfo := concat(ifinfo(0, 0, 0), rtattr(unix.IFLA_IFNAME, cstr(peer)), rtattr(unix.IFLA_NET_NS_FD, u32(uint32(ns.Fd()))))
	linkInfo := concat(rtattr(unix.IFLA_INFO_KIND, []byte("veth")), rtattr(unix.IFLA_INFO_DATA, rtattr(vethInfoPeer, peerInfo)))
	require.NoError(t, host.do(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL,
		ifinfo(0, 0, 0), rtattr(unix.IFLA_IFNAME, cstr(in.hostIf)), rtattr(unix.IFLA_LINKINFO, linkInfo)), "creating the veth pair")
	hostLink, err := net.InterfaceByName(in.hostIf)
	require.NoError(t, err)
	t.Cleanup(func() {
		// Deleting one end deletes the pair.
		if n, err := openRtnl(); err == nil {
			_ = n.do(unix.RTM_DELLINK, 0, ifinfo(int32(hostLink.Index), 0, 0))
			n.close()
		}
		if _, err := net.InterfaceByName(in.hostIf); err == nil {
			t.Errorf("interface %s is left behind", in.hostIf)
		}
	})
	require.NoError(t, host.addAddr(hostLink.Index, in.hostIP, 30))
	require.NoError(t, host.setUp(hostLink.Index))

	srv := &http.Server{Handler: http.HandlerFunc(in.serve), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	err = inNetns(ns, func() error {
		n, err := openRtnl()
		if err != nil {
			return err
		}
		defer n.close()
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		link, err := net.InterfaceByName(peer)
		if err != nil {
			return err
		}
		if err := n.setUp(lo.Index); err != nil {
			return err
		}
		if err := n.addAddr(link.Index, in.ip, 30); err != nil {
			return err
		}
		if err := n.setUp(link.Index); err != nil {
			return err
		}
		for _, port := range ports {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(in.ip, uint16(port)).String())
			if err != nil {
				return err
			}
			go func() { _ = srv.Serve(ln) }()
		}
		return nil
	})
	require.NoError(t, err, "setting up the internet's namespace")

	// The host reaches it (a link just brought up may need a moment).
	url := fmt.Sprintf("http://%s/ping", netip.AddrPortFrom(in.ip, uint16(ports[0])))
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	require.Eventually(t, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "the host cannot reach the internet's server at %s", url)
	return in
}

// body is what the server answers to path on port.
func internetBody(port, path string) string { return "internet:" + port + path }

func (in *internet) serve(w http.ResponseWriter, r *http.Request) {
	_, port, _ := net.SplitHostPort(r.Context().Value(http.LocalAddrContextKey).(net.Addr).String())
	in.mu.Lock()
	in.seen = append(in.seen, port+" "+r.URL.Path)
	in.mu.Unlock()
	fmt.Fprint(w, internetBody(port, r.URL.Path))
}

// saw reports whether the server received a request for path.
func (in *internet) saw(path string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range in.seen {
		if _, p, _ := bytes.Cut([]byte(s), []byte(" ")); string(p) == path {
			return true
		}
	}
	return false
}

// newNetns creates a network namespace and returns it, open. The thread
// that creates it goes back to the host's namespace, or is never reused.
func newNetns() (*os.File, error) {
	type result struct {
		ns  *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer self.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("unshare: %w", err)}
			return
		}
		ns, err := os.Open("/proc/thread-self/ns/net")
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{ns, err}
	}()
	r := <-ch
	return r.ns, r.err
}

// inNetns runs f on a thread in the namespace ns. Sockets f opens stay in
// ns.
func inNetns(ns *os.File, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer self.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		err = f()
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// rtnl is a NETLINK_ROUTE socket, in the network namespace it was opened
// in.
type rtnl struct {
	fd  int
	seq uint32
}

func openRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &rtnl{fd: fd}, nil
}

func (n *rtnl) close() { unix.Close(n.fd) }

// do sends one request and waits for its acknowledgement.
func (n *rtnl) do(typ, flags int, parts ...[]byte) error {
	n.seq++
	body := concat(parts...)
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	ne.PutUint16(msg[4:], uint16(typ))
	ne.PutUint16(msg[6:], uint16(flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK))
	ne.PutUint32(msg[8:], n.seq)
	msg = append(msg, body...)
	if err := unix.Sendto(n.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 1<<16)
	for {
		nr, _, err := unix.Recvfrom(n.fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:nr])
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != n.seq || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if code := int32(ne.Uint32(m.Data)); code != 0 {
				return syscall.Errno(-code)
			}
			return nil
		}
	}
}

func (n *rtnl) setUp(index int) error {
	return n.do(unix.RTM_NEWLINK, 0, ifinfo(int32(index), unix.IFF_UP, unix.IFF_UP))
}

func (n *rtnl) addAddr(index int, ip netip.Addr, bits int) error {
	msg := make([]byte, unix.SizeofIfAddrmsg)
	msg[0], msg[1] = unix.AF_INET, byte(bits)
	binary.NativeEndian.PutUint32(msg[4:], uint32(index))
	a := ip.As4()
	return n.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, msg, rtattr(unix.IFA_LOCAL, a[:]), rtattr(unix.IFA_ADDRESS, a[:]))
}

// ifinfo is a struct ifinfomsg.
func ifinfo(index int32, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// rtattr is one route attribute, padded to 4 bytes.
func rtattr(typ int, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], uint16(typ))
	copy(b[unix.SizeofRtAttr:], data)
	return b
}

func cstr(s string) []byte { return append([]byte(s), 0) }

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
