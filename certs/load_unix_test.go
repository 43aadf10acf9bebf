//go:build unix

package certs

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLoadRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := Load(Source{CA: fifo})
	if err == nil || !strings.Contains(err.Error(), "load ssl_ca "+fifo+": not a regular file") {
		t.Fatalf("err = %v", err)
	}
}
