// Package sys is the few Linux system calls the sandbox's init makes,
// on the standard library's syscall package alone.
//
// The init is gust's own binary re-executed, and it takes over in a package
// init function: everything initialised before it is start-up cost of
// every sandbox. Go initialises a package once its imports are, choosing
// among the ready ones by import path, so a dependency such as
// golang.org/x/sys or net, whose path sorts after most of gust's
// dependencies, would have them all (the Temporal server, protobuf
// registries) initialised first. Keep this package's imports to syscall
// and unsafe.
package sys

import (
	"syscall"
	"unsafe"
)

// Constants the standard library lacks, or that are named here so the
// init reads as one vocabulary.
const (
	MS_BIND         = syscall.MS_BIND
	MS_REC          = syscall.MS_REC
	MS_PRIVATE      = syscall.MS_PRIVATE
	MS_SLAVE        = syscall.MS_SLAVE
	MS_REMOUNT      = syscall.MS_REMOUNT
	MS_RDONLY       = syscall.MS_RDONLY
	MS_NOSUID       = syscall.MS_NOSUID
	MS_NODEV        = syscall.MS_NODEV
	MS_NOEXEC       = syscall.MS_NOEXEC
	MS_NOATIME      = syscall.MS_NOATIME
	MS_NODIRATIME   = syscall.MS_NODIRATIME
	MS_RELATIME     = syscall.MS_RELATIME
	MNT_DETACH      = syscall.MNT_DETACH
	ST_NOEXEC       = 0x8
	ST_NOATIME      = 0x400
	ST_NODIRATIME   = 0x800
	ST_RELATIME     = 0x1000
	O_DIRECTORY     = syscall.O_DIRECTORY
	O_RDONLY        = syscall.O_RDONLY
	O_CLOEXEC       = syscall.O_CLOEXEC
	AF_INET         = syscall.AF_INET
	SOCK_DGRAM      = syscall.SOCK_DGRAM
	SOCK_CLOEXEC    = syscall.SOCK_CLOEXEC
	SIOCGIFFLAGS    = syscall.SIOCGIFFLAGS
	SIOCSIFFLAGS    = syscall.SIOCSIFFLAGS
	IFF_UP          = syscall.IFF_UP
	SIGKILL         = syscall.SIGKILL
	EINTR           = syscall.EINTR
	EINVAL          = syscall.EINVAL
	POLLIN          = 0x1
	POLLERR         = 0x8
	POLLHUP         = 0x10
	CLONE_NEWCGROUP = 0x2000000

	// CAP_LAST_CAP bounds the capabilities to drop; a number the kernel
	// does not know answers EINVAL, which the caller ignores.
	CAP_LAST_CAP = 63

	PR_SET_PDEATHSIG           = syscall.PR_SET_PDEATHSIG
	PR_CAPBSET_DROP            = syscall.PR_CAPBSET_DROP
	PR_SET_SECCOMP             = syscall.PR_SET_SECCOMP
	PR_SET_NO_NEW_PRIVS        = 38
	PR_CAP_AMBIENT             = 47
	PR_CAP_AMBIENT_CLEAR_ALL   = 4
	SECCOMP_MODE_FILTER        = 2
	CLOSE_RANGE_CLOEXEC        = 1 << 2
	LINUX_CAPABILITY_VERSION_3 = 0x20080522

	sysCloseRange = 436 // the same on every architecture Linux numbers generically
)

type Statfs_t = syscall.Statfs_t

func Mount(source, target, fstype string, flags uintptr, data string) error {
	return syscall.Mount(source, target, fstype, flags, data)
}
func Unmount(target string, flags int) error               { return syscall.Unmount(target, flags) }
func Statfs(path string, st *Statfs_t) error               { return syscall.Statfs(path, st) }
func Open(path string, mode int, perm uint32) (int, error) { return syscall.Open(path, mode, perm) }
func Close(fd int) error                                   { return syscall.Close(fd) }
func Chdir(path string) error                              { return syscall.Chdir(path) }
func Fchdir(fd int) error                                  { return syscall.Fchdir(fd) }
func PivotRoot(newroot, putold string) error               { return syscall.PivotRoot(newroot, putold) }
func Sethostname(name []byte) error                        { return syscall.Sethostname(name) }
func Socket(domain, typ, proto int) (int, error)           { return syscall.Socket(domain, typ, proto) }
func Unshare(flags int) error                              { return syscall.Unshare(flags) }
func CloseOnExec(fd int)                                   { syscall.CloseOnExec(fd) }
func UnixRights(fds ...int) []byte                         { return syscall.UnixRights(fds...) }

func Sendmsg(fd int, p, oob []byte, to syscall.Sockaddr, flags int) error {
	return syscall.Sendmsg(fd, p, oob, to, flags)
}

func Prctl(option int, arg2, arg3, arg4, arg5 uintptr) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, uintptr(option), arg2, arg3, arg4, arg5, 0)
	if e != 0 {
		return e
	}
	return nil
}

// CloseRange is close_range(2), used with CLOSE_RANGE_CLOEXEC.
func CloseRange(first, last uint, flags uint) error {
	_, _, e := syscall.RawSyscall(sysCloseRange, uintptr(first), uintptr(last), uintptr(flags))
	if e != 0 {
		return e
	}
	return nil
}

// CapUserHeader and CapUserData are capset(2)'s arguments.
type CapUserHeader struct {
	Version uint32
	Pid     int32
}

type CapUserData struct {
	Effective, Permitted, Inheritable uint32
}

func Capset(hdr *CapUserHeader, data *CapUserData) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(data)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// PollFd is poll(2)'s struct pollfd.
type PollFd struct {
	Fd      int32
	Events  int16
	Revents int16
}

func Poll(fds []PollFd, timeoutMS int) (int, error) {
	n, _, e := syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(timeoutMS))
	if e != 0 {
		return int(n), e
	}
	return int(n), nil
}

// Ifreq is a struct ifreq holding an interface name and its flags.
type Ifreq struct {
	name  [syscall.IFNAMSIZ]byte
	flags uint16
	_     [22]byte // the rest of the union
}

func NewIfreq(name string) (*Ifreq, error) {
	var r Ifreq
	if len(name) >= len(r.name) {
		return nil, EINVAL
	}
	copy(r.name[:], name)
	return &r, nil
}

func (r *Ifreq) Uint16() uint16     { return r.flags }
func (r *Ifreq) SetUint16(v uint16) { r.flags = v }

func IoctlIfreq(fd int, req uint, r *Ifreq) error {
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(r)))
	if e != 0 {
		return e
	}
	return nil
}

// LoadSeccomp loads a compiled filter on the calling thread; no_new_privs
// must be set.
func LoadSeccomp(prog []syscall.SockFilter) error {
	fprog := syscall.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	return Prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0)
}

// ListenTCP4 opens a listening TCP socket on an IPv4 address, close-on-exec.
func ListenTCP4(ip [4]byte, port int) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: ip}); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	if err := syscall.Listen(fd, syscall.SOMAXCONN); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// ThreadSetgroups, ThreadSetresgid and ThreadSetresuid change the calling
// thread's credentials only (the raw system calls; Go's wrappers change
// every thread of the process).
func ThreadSetgroups() error { return raw(syscall.SYS_SETGROUPS, 0, 0, 0) }
func ThreadSetresgid(id int) error {
	return raw(syscall.SYS_SETRESGID, uintptr(id), uintptr(id), uintptr(id))
}
func ThreadSetresuid(id int) error {
	return raw(syscall.SYS_SETRESUID, uintptr(id), uintptr(id), uintptr(id))
}

func raw(nr, a1, a2, a3 uintptr) error {
	if _, _, e := syscall.RawSyscall(nr, a1, a2, a3); e != 0 {
		return e
	}
	return nil
}
