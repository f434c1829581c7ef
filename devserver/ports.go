package devserver

import (
	"fmt"
	"net"
	"strconv"
)

// FreePort asks the kernel for a free TCP port on ip.
//
// Linux hands out ephemeral ports at random and may hand the same one out
// again as soon as the probe closes it. To keep the port from coming back
// before its owner binds it, FreePort connects to the probe and closes the
// accepted side first, which leaves the pair in TIME_WAIT: bind(0) skips such
// ports, while an explicit bind with SO_REUSEADDR (Go's default) still gets it.
func FreePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", addr)
	if err != nil {
		return port, nil // the port is still free; only the TIME_WAIT trick failed
	}
	if server := <-accepted; server != nil {
		_ = server.Close()
	}
	_ = client.Close()
	return port, nil
}

// CheckPortFree returns an error if ip:port cannot be listened on.
func CheckPortFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}
