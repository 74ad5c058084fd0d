//go:build linux

package cluster_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// latchProxy is a TCP proxy in front of the auth server, whose URL is the
// issuer. Armed for a process (hold), it forwards that process's refresh
// requests (POST /oauth2/token) but never gives it the answers: the auth
// server rotates the refresh token and the process never learns the new
// one, as if it died between the two — which the test then makes true.
// Which process a connection comes from is read from /proc.
type latchProxy struct {
	t    *testing.T
	ln   net.Listener
	base string // http://addr
	port int

	mu     sync.Mutex
	target string
	conns  map[net.Conn]bool
	pid    int // the process whose refresh answers are held; 0: none

	// held counts the refresh requests whose answers are held, answered
	// those the auth server answered (and the proxy swallowed).
	held, answered atomic.Int64
	wg             sync.WaitGroup
}

func startLatchProxy(t *testing.T) *latchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &latchProxy{t: t, ln: ln, base: "http://" + ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *latchProxy) setTarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

// hold arms the proxy for the process pid.
func (p *latchProxy) hold(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pid = pid
}

func (p *latchProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

func (p *latchProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *latchProxy) pipe(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	if target == "" {
		return
	}
	up, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	p.track(c, true)
	p.track(up, true)
	defer p.track(c, false)
	defer p.track(up, false)

	// holding: this connection's answers are swallowed from now on.
	var holding atomic.Bool
	var counted bool
	peer := c.RemoteAddr().(*net.TCPAddr).Port
	checked := 0 // the pid the connection was checked against
	mine := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 {
				if holding.Load() {
					if !counted {
						counted = true
						p.answered.Add(1)
					}
				} else if _, werr := c.Write(buf[:n]); werr != nil {
					c.Close()
					return
				}
			}
			if err != nil {
				c.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			pid := p.pid
			p.mu.Unlock()
			if pid != 0 && !holding.Load() && bytes.HasPrefix(buf[:n], []byte("POST /oauth2/token ")) {
				if checked != pid {
					checked, mine = pid, ownsPort(pid, peer, p.port)
				}
				if mine {
					holding.Store(true)
					p.held.Add(1)
				}
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	up.Close()
	<-done
}

// ownsPort reports whether process pid holds the TCP socket 127.0.0.1:port
// connected to 127.0.0.1:remote, as /proc/net/tcp and /proc/PID/fd say.
func ownsPort(pid, port, remote int) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	rem := fmt.Sprintf("0100007F:%04X", remote)
	inode := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[2] == rem {
			inode = f[9]
			break
		}
	}
	if inode == "" {
		return false
	}
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := "socket:[" + inode + "]"
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && l == want {
			return true
		}
	}
	return false
}
