package js

import (
	"io/fs"
	"strings"
	"testing"
)

// TestFS checks that the embedded SDK is the ES module and its declarations.
func TestFS(t *testing.T) {
	src, err := fs.ReadFile(FS, "latch.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export function createClient(", "export class LatchError"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("latch.js lacks %q", want)
		}
	}
	dts, err := fs.ReadFile(FS, "latch.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dts), "export function createClient(options: ClientOptions): LatchClient;") {
		t.Error("latch.d.ts does not declare createClient")
	}
}
