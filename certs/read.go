package certs

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// maxFileSize bounds every read of a configured file: a CRL of 100,000
// entries is about 5 MiB, so 64 MiB leaves ample room while refusing
// /dev/zero or a runaway log written to the wrong path.
const maxFileSize = 64 << 20

var errTooLarge = fmt.Errorf("file is larger than %d MiB", maxFileSize>>20)

// hashedCertName matches the names `openssl rehash` gives CA certificates
// (subject hash, dot, sequence number).
var hashedCertName = regexp.MustCompile(`^[0-9a-f]{8}\.[0-9]+$`)

// hashedCRLName matches the names `openssl rehash` gives CRLs.
var hashedCRLName = regexp.MustCompile(`^[0-9a-f]{8}\.r[0-9]+$`)

// digester accumulates the content hash of a snapshot: every file's name
// and content, length-prefixed so that boundaries cannot be confused.
type digester struct{ h hash.Hash }

func newDigester() *digester { return &digester{h: sha256.New()} }

func (d *digester) add(name string, data []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(name)))
	d.h.Write(n[:])
	d.h.Write([]byte(name))
	binary.BigEndian.PutUint64(n[:], uint64(len(data)))
	d.h.Write(n[:])
	d.h.Write(data)
}

func (d *digester) sum() (out [32]byte) {
	copy(out[:], d.h.Sum(nil))
	return out
}

// readFile reads path (following symlinks), refusing anything that is not
// a regular file or is larger than maxFileSize, and adds it to d.
// readParsed reads the file that option names and parses it, wrapping
// either failure as "load OPTION PATH: ...".
func readParsed[T any](option, path string, d *digester, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := readFile(path, d)
	if err != nil {
		return zero, loadError(option, path, err)
	}
	v, err := parse(data)
	if err != nil {
		return zero, loadError(option, path, err)
	}
	return v, nil
}

func readFile(path string, d *digester) ([]byte, error) {
	// Stat before Open: opening a FIFO for reading would block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Size() > maxFileSize {
		return nil, errTooLarge
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, errTooLarge
	}
	d.add(path, data)
	return data, nil
}

// listDir returns the files of dir (full paths, sorted by name) whose names
// match hashed or end in one of the suffixes. Entries are not followed
// here; readFile follows symlinks.
func listDir(dir string, hashed *regexp.Regexp, suffixes ...string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if hashed.MatchString(name) || hasSuffix(name, suffixes) {
			out = append(out, filepath.Join(dir, name))
		}
	}
	return out, nil
}

// fileAndDir calls add for the file of option fileOpt (if set) and then for
// every matching file of folder option dirOpt (if set), in order: the
// shape shared by ssl_ca/ssl_capath and ssl_crl/ssl_crlpath.
func fileAndDir(fileOpt, file, dirOpt, dir string, hashed *regexp.Regexp, suffixes []string, add func(opt, path string) error) error {
	if file != "" {
		if err := add(fileOpt, file); err != nil {
			return err
		}
	}
	if dir == "" {
		return nil
	}
	files, err := listDir(dir, hashed, suffixes...)
	if err != nil {
		return loadError(dirOpt, dir, err)
	}
	for _, f := range files {
		if err := add(dirOpt, f); err != nil {
			return err
		}
	}
	return nil
}

func hasSuffix(name string, suffixes []string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
