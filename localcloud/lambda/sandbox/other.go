//go:build !linux

package sandbox

import "net"

// Process is a started sandbox; there are none off Linux.
type Process struct{}

// Check reports why sandboxes cannot be built here.
func Check() error { return ErrUnsupported }

// Start fails off Linux.
func Start(*Spec) (*Process, error) { return nil, ErrUnsupported }

func (*Process) Pid() int                            { return 0 }
func (*Process) Listen(string) (net.Listener, error) { return nil, ErrUnsupported }
func (*Process) Release() error                      { return ErrUnsupported }
func (*Process) Kill()                               {}
func (*Process) Wait() error                         { return ErrUnsupported }
func (*Process) Close()                              {}
