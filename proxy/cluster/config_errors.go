package cluster

import (
	"fmt"
	"strings"
)

// Severity tells errors from warnings in a Problem.
type Severity uint8

// Severities. The zero value is an error, so a Problem is an error unless it
// says otherwise.
const (
	SeverityError Severity = iota
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Problem is one thing wrong (or worth a warning) in a cluster file or in
// the key material it names. Path is the key path in the cluster file, such
// as "members.mysql-2.ports.group", possibly followed by a file name in
// parentheses; it is empty for problems of the file as a whole.
type Problem struct {
	Path     string
	Msg      string
	Severity Severity
}

// String renders the problem as "path: msg", prefixed with "warning: " for
// warnings.
func (p Problem) String() string {
	var b strings.Builder
	if p.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ConfigError lists every problem found in a cluster file. File is the name
// the file was loaded under, or "" when unknown.
type ConfigError struct {
	File     string
	Problems []Problem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("invalid cluster file")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, " (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// problems collects problems in the order found, dropping exact duplicates
// (an error in the top-level tls block is found once per channel that
// inherits it).
type problems struct {
	list []Problem
	seen map[Problem]bool
}

func (ps *problems) add(path, format string, args ...any) {
	ps.addProblem(Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (ps *problems) warn(path, format string, args ...any) {
	ps.addProblem(Problem{Path: path, Msg: fmt.Sprintf(format, args...), Severity: SeverityWarning})
}

func (ps *problems) addProblem(p Problem) {
	if ps.seen == nil {
		ps.seen = make(map[Problem]bool)
	}
	if ps.seen[p] {
		return
	}
	ps.seen[p] = true
	ps.list = append(ps.list, p)
}

// errors returns the error-severity problems.
func (ps *problems) errors() []Problem { return ps.bySeverity(SeverityError) }

// warnings returns the warning-severity problems.
func (ps *problems) warnings() []Problem { return ps.bySeverity(SeverityWarning) }

// bySeverity returns the problems of severity s, in the order found.
func (ps *problems) bySeverity(s Severity) []Problem {
	var out []Problem
	for _, p := range ps.list {
		if p.Severity == s {
			out = append(out, p)
		}
	}
	return out
}

// err returns a *ConfigError holding the errors found, or nil.
func (ps *problems) err(file string) error {
	errs := ps.errors()
	if len(errs) == 0 {
		return nil
	}
	return &ConfigError{File: file, Problems: errs}
}
