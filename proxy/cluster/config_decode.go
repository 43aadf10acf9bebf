package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeConfig decodes a cluster file into a fileConfig, rejecting unknown
// keys. Each problem names the key path and line.
func decodeConfig(data []byte) (fileConfig, []Problem) {
	var raw fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&raw)
	if errors.Is(err, io.EOF) {
		return raw, []Problem{{Msg: "file is empty"}}
	}
	var terr *yaml.TypeError
	if errors.As(err, &terr) {
		return raw, typeErrorProblems(data, terr)
	}
	if err != nil {
		return raw, []Problem{{Msg: err.Error()}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return raw, []Problem{{Msg: fmt.Sprintf("more than one YAML document (line %d)", extra.Line)}}
	}
	return raw, nil
}

var (
	errLineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownKeyRE  = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	cannotUnmarRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// typeErrorProblems turns the decoder's "line N: ..." messages into problems
// that name the key path, found by walking the document's node tree.
func typeErrorProblems(data []byte, terr *yaml.TypeError) []Problem {
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc) // it decoded once already; a failure leaves no paths
	var out []Problem
	for _, msg := range terr.Errors {
		m := errLineRE.FindStringSubmatch(msg)
		if m == nil {
			out = append(out, Problem{Msg: msg})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		out = append(out, lineProblem(&doc, line, m[2]))
	}
	return out
}

// lineProblem explains one decoder message about line.
func lineProblem(doc *yaml.Node, line int, msg string) Problem {
	if m := unknownKeyRE.FindStringSubmatch(msg); m != nil {
		path, _ := findPath(doc, func(key, _ *yaml.Node) bool {
			return key != nil && key.Line == line && key.Value == m[1]
		})
		if path == "" {
			path = m[1]
		}
		return Problem{Path: path, Msg: fmt.Sprintf("unknown key (line %d%s)", line, suggestKey(m[1], m[2]))}
	}
	m := cannotUnmarRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Msg: fmt.Sprintf("%s (line %d)", msg, line)}
	}
	tag, value, into := m[1], m[2], m[3]
	path, node := findPath(doc, func(_, v *yaml.Node) bool {
		if v.Line != line || v.ShortTag() != tag {
			return false
		}
		return v.Kind != yaml.ScalarNode || strings.HasPrefix(v.Value, strings.TrimSuffix(value, "..."))
	})
	got := kindName(tag)
	if node != nil && node.Kind == yaml.ScalarNode {
		got = strconv.Quote(node.Value)
	} else if value != "" {
		got = strconv.Quote(value)
	}
	return Problem{Path: path, Msg: fmt.Sprintf("cannot use %s as %s (line %d)", got, wantName(into), line)}
}

// kindName names a YAML tag for humans.
func kindName(tag string) string {
	switch tag {
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!null":
		return "null"
	}
	return "a " + strings.TrimPrefix(tag, "!!")
}

// wantName names the Go type a value was decoded into in cluster file terms.
func wantName(goType string) string {
	switch {
	case goType == "duration":
		return "a duration (such as 30s, 500ms or 1m30s)"
	case goType == "int":
		return "a port number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case goType == "[]string":
		return "a list of strings"
	case strings.HasPrefix(goType, "map["), knownKeys[goType] != nil:
		return "a mapping"
	}
	return goType
}

// findPath walks the node tree and returns the dotted key path of the first
// value node (with its key node, nil for list items) that match accepts, and
// that node.
func findPath(doc *yaml.Node, match func(key, value *yaml.Node) bool) (string, *yaml.Node) {
	var found *yaml.Node
	var walk func(n *yaml.Node, path string) (string, bool)
	walk = func(n *yaml.Node, path string) (string, bool) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p, ok := walk(c, path); ok {
					return p, true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinPath(path, k.Value)
				if match(k, v) {
					found = v
					return p, true
				}
				if p, ok := walk(v, p); ok {
					return p, true
				}
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if match(nil, v) {
					found = v
					return p, true
				}
				if p, ok := walk(v, p); ok {
					return p, true
				}
			}
		}
		return "", false
	}
	p, _ := walk(doc, "")
	return p, found
}

// joinPath appends a key to a dotted path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// knownKeys holds the blocks of the cluster file by the name the decoder
// gives their Go type in its messages ("cluster.TLSOptions"), taken from
// the types themselves so that it follows the code when it moves.
var knownKeys = typesByName(
	reflect.TypeFor[fileConfig](),
	reflect.TypeFor[TLSOptions](),
	reflect.TypeFor[channelConfig](),
	reflect.TypeFor[memberConfig](),
	reflect.TypeFor[ACMEOptions](),
	reflect.TypeFor[limitsConfig](),
)

// typesByName maps each type's String() to the type.
func typesByName(types ...reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, len(types))
	for _, t := range types {
		m[t.String()] = t
	}
	return m
}

// suggestKey returns "; did you mean K?" for the known key of the block
// closest to an unknown one, or "" when none is close.
func suggestKey(unknown, goType string) string {
	t, ok := knownKeys[goType]
	if !ok {
		return ""
	}
	best, bestDist := "", 3 // suggest only within two edits
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if d := editDistance(strings.ToLower(unknown), key); d < bestDist {
			best, bestDist = key, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
