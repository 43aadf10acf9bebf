package proxy

import "testing"

// TestMemoryReleaser releases after a large drop from the peak only.
func TestMemoryReleaser(t *testing.T) {
	var m memoryReleaser
	m.observe(1000)
	if m.peak != 1000 {
		t.Fatalf("peak %d", m.peak)
	}
	m.observe(501)
	if m.peak != 1000 {
		t.Fatal("released before half the links closed")
	}
	m.observe(500)
	if m.peak != 500 {
		t.Fatalf("no release at half the peak: peak %d", m.peak)
	}
	m.observe(40)
	if m.peak != 40 {
		t.Fatalf("no release after 460 closed: peak %d", m.peak)
	}
	m.observe(0)
	if m.peak != 40 {
		t.Fatal("released after only 40 links closed")
	}
}
