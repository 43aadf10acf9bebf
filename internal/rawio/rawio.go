// Package rawio reads and writes nonblocking sockets with raw system calls
// (syscall.RawSyscall), which do not tell the Go scheduler they are in a
// system call. A read or write of a nonblocking socket never waits, so the
// scheduler has nothing to gain by handing the thread's P to another
// thread while it runs; telling it costs, on a stream of small messages,
// a hand-off and a thread wake-up whenever the call outlasts sysmon's
// 20 µs tick (bench/RESULTS.md, "The group workloads").
package rawio

import (
	"os"
	"syscall"
	"unsafe"
)

// Read reads once from the nonblocking socket fd into p.
func Read(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// Writer writes to a nonblocking socket through its RawConn: raw writes
// while the socket takes bytes, the poller's wait (and the connection's
// write deadline) when it is full. It is not safe for concurrent use.
type Writer struct {
	rc  syscall.RawConn
	p   []byte
	n   int
	err error
	do  func(fd uintptr) bool // w.write, made once so a write allocates nothing
}

// NewWriter returns a Writer on rc.
func NewWriter(rc syscall.RawConn) *Writer {
	w := &Writer{rc: rc}
	w.do = w.write
	return w
}

// Write writes all of p, or returns why it could not.
func (w *Writer) Write(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	if err := w.rc.Write(w.do); err != nil && w.err == nil {
		w.err = err
	}
	n, err := w.n, w.err
	w.p = nil
	return n, err
}

func (w *Writer) write(fd uintptr) bool {
	for w.n < len(w.p) {
		p := w.p[w.n:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			w.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.err = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}
