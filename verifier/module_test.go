package verifier_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowedModules is every module a resource server gets by importing the
// verifier. A new dependency of the verifier module must be added here on
// purpose: resource servers pay for each one.
var allowedModules = []string{
	"github.com/latchauth/latch/verifier",
	"github.com/go-jose/go-jose/v4",
	"github.com/golang-jwt/jwt/v5",
}

// TestModuleDependencies keeps the verifier module small: importing it
// must not pull the auth server's requirements (SQLite, pgx, chromedp,
// Redis…) into a resource server's build.
func TestModuleDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list the module graph: %v", err)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Path}}", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	var got []string
	for line := range strings.Lines(string(out)) {
		if p := strings.TrimSpace(line); p != "" {
			got = append(got, p)
		}
	}
	for _, m := range got {
		if !slices.Contains(allowedModules, m) {
			t.Errorf("the verifier module requires %s, which is not in allowedModules", m)
		}
	}
	if !slices.Contains(got, "github.com/latchauth/latch/verifier") {
		t.Errorf("go list -m all does not name the verifier module itself: %q", got)
	}
}
