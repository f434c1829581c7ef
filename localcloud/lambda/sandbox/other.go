//go:build !linux

package sandbox

import (
	"net"
	"os"
)

// Process is a started sandbox; there are none off Linux.
type Process struct{}

// Check reports why sandboxes cannot be built here.
func Check() error { return ErrUnsupported }

// Prepare fails off Linux.
func Prepare(Options) (*Process, error) { return nil, ErrUnsupported }

// Start fails off Linux.
func Start(Options, *Spec) (*Process, error) { return nil, ErrUnsupported }

func (*Process) Configure(*Spec) error { return ErrUnsupported }
func (*Process) Output() *os.File      { return nil }
func (*Process) Stderr() *os.File      { return nil }

func (*Process) Pid() int                            { return 0 }
func (*Process) Listen(string) (net.Listener, error) { return nil, ErrUnsupported }
func (*Process) Release() error                      { return ErrUnsupported }
func (*Process) Kill()                               {}
func (*Process) Wait() error                         { return ErrUnsupported }
func (*Process) Close()                              {}
