package cluster

import (
	"fmt"
	"regexp"
	"strings"
)

// envFunc looks up an environment variable; os.LookupEnv is one.
type envFunc func(name string) (value string, ok bool)

// MemberEnvVar names the variable that holds the member being planned.
const MemberEnvVar = "GROUPWIRE_MEMBER"

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// withMember returns env with GROUPWIRE_MEMBER set to member, whatever
// env says: ${GROUPWIRE_MEMBER} is always the member being planned, for
// `run`, `check` and every other command alike. A nil env is empty.
func withMember(env envFunc, member string) envFunc {
	return func(name string) (string, bool) {
		switch {
		case name == MemberEnvVar:
			return member, true
		case env != nil:
			return env(name)
		}
		return "", false
	}
}

// expandEnv replaces each ${NAME} in s with the variable's value; "$$" is a
// literal "$" and any other "$" is kept as written. An unset variable is an
// error naming it.
func expandEnv(s string, env envFunc) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			b.WriteByte('$')
			s = s[2:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			name := s[2:end]
			if !envNameRE.MatchString(name) {
				return "", fmt.Errorf("bad variable name %q in %s (use letters, digits and _; write $$ for a literal $)", name, s[:end+1])
			}
			v, ok := env(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(v)
			s = s[end+1:]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
}

// expander expands strings of the cluster file, recording a problem at the
// key path for each failure.
type expander struct {
	env    envFunc
	ps     *problems
	failed map[string]bool // paths whose expansion failed, so later checks skip them
}

func newExpander(env envFunc, ps *problems) expander {
	return expander{env: env, ps: ps, failed: make(map[string]bool)}
}

// expand returns s expanded, or "" after recording a problem at path.
func (x expander) expand(path, s string) string {
	v, err := expandEnv(s, x.env)
	if err != nil {
		x.ps.add(path, "%v", err)
		x.failed[path] = true
		return ""
	}
	return v
}

// tls expands every option of a TLS block.
func (x expander) tls(path string, o TLSOptions) TLSOptions {
	out := TLSOptions{ACME: x.acme(path+".acme", o.ACME), SPIFFE: x.spiffe(path+".spiffe", o.SPIFFE), AcceptModes: o.AcceptModes}
	for _, f := range tlsFields {
		*f.get(&out) = x.expand(path+"."+f.key, *f.get(&o))
	}
	return out
}

// member expands every string of a member.
func (x expander) member(path string, m memberConfig) memberConfig {
	out := memberConfig{
		Address:  x.expand(path+".address", m.Address),
		Listen:   x.expand(path+".listen", m.Listen),
		Identity: x.expand(path+".identity", m.Identity),
		LocalIP:  x.expand(path+".local_ip", m.LocalIP),
		Ports:    m.Ports,

		AllowedUIDs: m.AllowedUIDs,
	}
	if m.Admin != nil {
		a := x.expand(path+".admin", *m.Admin)
		out.Admin = &a
	}
	return out
}
