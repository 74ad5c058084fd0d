package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/latchauth/latch/webhook"
)

const hookSecret = "a-webhook-secret-of-at-least-32-characters"

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWebhooksLoad: the webhooks list from the file, a secret from the
// environment and one from a file, default ids.
func TestWebhooksLoad(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "hook-secret")
	if err := os.WriteFile(secretFile, []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "data_dir: /var/lib/latch\nwebhooks:\n"+
		"  - url: https://siem.example.com/latch\n    events: [login_failed, refresh_token_reused]\n"+
		"  - id: model\n    url: http://127.0.0.1:9000/hook\n    secret_file: "+secretFile+"\n")
	c, err := Load(path, []string{"LATCH_WEBHOOKS_0_SECRET=" + hookSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []webhook.Hook{
		{ID: webhook.DefaultID("https://siem.example.com/latch"), URL: "https://siem.example.com/latch", Secret: hookSecret,
			Events: []string{"login_failed", "refresh_token_reused"}},
		{ID: "model", URL: "http://127.0.0.1:9000/hook", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	}
	if got := c.Hooks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("hooks\n%+v\nwant\n%+v", got, want)
	}

	// The whole list from one variable, as JSON.
	c, err = Load("", []string{"LATCH_DATA_DIR=/d", `LATCH_WEBHOOKS=[{"url":"https://h.example/x","secret":"` + hookSecret + `"}]`}, nil)
	if err != nil || len(c.Webhooks) != 1 || c.Webhooks[0].URL != "https://h.example/x" {
		t.Fatalf("LATCH_WEBHOOKS: %+v, %v", c.Webhooks, err)
	}

	var f reflect.StructField
	f, _ = reflect.TypeFor[Webhook]().FieldByName("Secret")
	if f.Tag.Get("secret") != "true" {
		t.Error("webhooks[].secret is not marked secret")
	}
}

// TestWebhooksRejects: each bad webhook setting is refused with an error
// that names it as webhooks[N].field, and never shows a secret.
func TestWebhooksRejects(t *testing.T) {
	body := "    url: https://ok.example/h\n    secret: " + hookSecret + "\n"
	good := "  -" + body[3:]
	for _, tc := range []struct {
		name, items string
		env         []string
		want        string
	}{
		{"http elsewhere", good + "  - url: http://hooks.example.com/h?token=tok3n\n    secret: " + hookSecret + "\n", nil,
			"webhooks[1].url (from "},
		{"no secret", "  - url: https://ok.example/h\n", nil, "webhooks[0].secret"},
		{"short secret", "  - url: https://ok.example/h\n    secret: short-s3cret\n", nil, "webhooks[0].secret"},
		{"both secrets", "  - url: https://ok.example/h\n    secret: " + hookSecret + "\n    secret_file: /x\n", nil, "webhooks[0].secret_file"},
		{"missing secret file", "  - url: https://ok.example/h\n    secret_file: /nonexistent/secret\n", nil, "webhooks[0].secret_file"},
		{"typo", "  - urll: https://ok.example/h\n    secret: " + hookSecret + "\n", nil, "did you mean webhooks[0].url?"},
		{"not a mapping", "  - https://ok.example/h\n", nil, "webhooks[0] (from"},
		{"same id", "  - id: a\n" + body + "  - id: a\n" + body, nil, "webhooks[1].id"},
		{"bad id", "  - id: a b\n" + body, nil, "webhooks[0].id"},
		{"bad event", good[:len(good)-1] + "\n    events: [Login-Failed]\n", nil, "webhooks[0].events"},
		{"env index beyond the list", good, []string{"LATCH_WEBHOOKS_3_SECRET=" + hookSecret}, "there is no webhooks[3]"},
		{"env unknown field", good, []string{"LATCH_WEBHOOKS_0_SECRT=" + hookSecret}, "did you mean LATCH_WEBHOOKS_0_SECRET?"},
		{"env short secret", good, []string{"LATCH_WEBHOOKS_0_SECRET=short-s3cret"}, "webhooks[0].secret (from LATCH_WEBHOOKS_0_SECRET)"},
	} {
		path := writeConfig(t, "data_dir: /var/lib/latch\nwebhooks:\n"+tc.items)
		_, err := Load(path, tc.env, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
			continue
		}
		for _, leak := range []string{"short-s3cret", "tok3n", hookSecret} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error %q shows %q", tc.name, err, leak)
			}
		}
	}
}
