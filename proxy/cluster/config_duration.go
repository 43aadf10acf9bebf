package cluster

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// duration is a time.Duration in the cluster file: a Go duration string
// ("30s", "1m30s") or a bare 0.
type duration time.Duration

// UnmarshalYAML decodes a duration. Errors are returned as *yaml.TypeError
// so that the decoder keeps going and reports every problem of the file.
func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "0" {
		*d = 0
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		if v, err := time.ParseDuration(n.Value); err == nil {
			*d = duration(v)
			return nil
		}
	}
	value := ""
	if n.Kind == yaml.ScalarNode {
		value = " `" + n.Value + "`"
	}
	return &yaml.TypeError{Errors: []string{
		fmt.Sprintf("line %d: cannot unmarshal %s%s into duration", n.Line, n.ShortTag(), value),
	}}
}

// or returns the duration, or def when it is not set.
func (d *duration) or(def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}
