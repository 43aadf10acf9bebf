package cluster

import (
	"reflect"
	"strings"
	"testing"

	"github.com/groupwire/groupwire/certs"
)

// TestTLSFieldsCoverTLSOptions holds tlsFields against TLSOptions and
// certs.Source by reflection: every string key of a TLS block is listed
// once under its YAML name and reaches its own field, and every field of
// certs.Source is some file key's. A key added to the struct and not to
// the table would otherwise be silently empty after ${VAR} expansion, or
// silently not inherited.
func TestTLSFieldsCoverTLSOptions(t *testing.T) {
	typ := reflect.TypeFor[TLSOptions]()
	listed := map[string]tlsField{}
	for _, f := range tlsFields {
		if _, dup := listed[f.key]; dup {
			t.Errorf("tlsFields lists %s twice", f.key)
		}
		listed[f.key] = f
	}
	sources := 0
	for i := range typ.NumField() {
		sf := typ.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if sf.Type.Kind() != reflect.String {
			continue // accept_modes and acme are handled on their own
		}
		f, ok := listed[key]
		if !ok {
			t.Errorf("TLSOptions.%s (%s) is not in tlsFields", sf.Name, key)
			continue
		}
		delete(listed, key)
		var o TLSOptions
		*f.get(&o) = "marker"
		if got := reflect.ValueOf(o).Field(i).String(); got != "marker" {
			t.Errorf("tlsFields' %s reaches another field than TLSOptions.%s", key, sf.Name)
		}
		if f.source != nil {
			sources++
			var s certs.Source
			*f.source(&s) = "marker"
			if !strings.EqualFold(reflect.TypeFor[certs.Source]().Field(sourceIndex(t, s)).Name, strings.TrimPrefix(sf.Name, "SSL")) {
				t.Errorf("tlsFields' %s fills certs.Source.%s", key, reflect.TypeFor[certs.Source]().Field(sourceIndex(t, s)).Name)
			}
		}
	}
	for key := range listed {
		t.Errorf("tlsFields lists %s, which TLSOptions has no string field for", key)
	}
	files := 0
	for f := range reflect.TypeFor[certs.Source]().Fields() {
		if f.Type.Kind() == reflect.String {
			files++
		}
	}
	if sources != files {
		t.Errorf("%d file keys in tlsFields, certs.Source has %d file fields", sources, files)
	}
}

// sourceIndex is the index of the one field of s that is set.
func sourceIndex(t *testing.T, s certs.Source) int {
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		if v.Field(i).String() != "" {
			return i
		}
	}
	t.Fatal("no field of certs.Source set")
	return -1
}
