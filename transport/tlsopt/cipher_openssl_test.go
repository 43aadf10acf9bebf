package tlsopt

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// opensslCipherStrings are evaluated both by ResolveCipherList's engine and
// by the local openssl, whose orders must agree.
var opensslCipherStrings = []string{
	"HIGH:!aNULL",
	"DEFAULT",
	"DEFAULT:!SHA1",
	"ECDHE+AESGCM",
	"ALL:!aNULL:!eNULL",
	"HIGH:!aNULL:!MD5:!RC4",
	"ECDHE+AESGCM:-ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE+AESGCM:+aRSA",
	"kEECDH+AES:!SHA1:@STRENGTH",
	"EECDH+CHACHA20:EECDH+AES128:RSA+AES128:EECDH+AES256:RSA+AES256:!MD5",
	"AESGCM:!AES256:AES",
	"ECDHE-RSA-AES128-SHA:ALL:-kRSA:+SHA256",
	"MEDIUM:HIGH:-kRSA:+SHA256:kRSA",
	"aECDSA:-SHA1:AESGCM:@STRENGTH:CHACHA20",
	"HIGH:-AES:ECDHE-RSA-AES256-SHA384:AES",
}

// TestCipherEvalMatchesOpenSSL checks the evaluator's order against the
// openssl binary the table was generated from. It needs openssl on PATH.
func TestCipherEvalMatchesOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	legacy := map[string]bool{}
	for _, s := range opensslSuites[len(opensslSuites)-5:] {
		legacy[s.name] = true
	}
	for _, cs := range opensslCipherStrings {
		t.Run(cs, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "ciphers", "-ciphersuites", "", cs+":@SECLEVEL=0").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl ciphers %q: %v: %s", cs, err, out)
			}
			want := strings.Split(strings.TrimSpace(string(out)), ":")
			ev := newCipherEval()
			elems := strings.Split(cs, ":")
			if elems[0] == "DEFAULT" {
				elems = append([]string{"ALL", "!COMPLEMENTOFDEFAULT", "!eNULL"}, elems[1:]...)
			}
			for _, e := range elems {
				if err := ev.apply(e); err != nil {
					t.Fatalf("apply %q: %v", e, err)
				}
			}
			var got []string
			for _, i := range ev.order {
				if name := opensslSuites[i].name; ev.active[i] && !legacy[name] {
					got = append(got, name)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("order differs from openssl\n got %d: %s\nwant %d: %s", len(got), strings.Join(got, ":"), len(want), strings.Join(want, ":"))
			}
		})
	}
}
