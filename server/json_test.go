package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecodeMembers: a body whose member names two parsers could read two
// ways is refused with 400 invalid_request and a description that names
// the member; bodies that are plainly one object pass.
func TestDecodeMembers(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		err        string // "" for accepted; else a part of the description
	}{
		{"plain", `{"email":"a@b.c","password":"x"}`, ""},
		{"unknown member", `{"email":"a@b.c","password":"x","extra":1}`, ""},
		{"escaped name is the same name", `{"\u0065mail":"a@b.c"}`, ""},
		{"nested objects with the same names", `{"email":"a@b.c","x":{"a":1,"b":{"a":2}},"y":[{"a":1},{"a":2}]}`, ""},
		{"empty object", `{}`, ""},
		{"duplicate", `{"email":"a@b.c","email":"evil@b.c","password":"x"}`, `member "email" appears more than once`},
		{"duplicate, one escaped", `{"email":"a@b.c","\u0065mail":"evil@b.c"}`, `member "email" appears more than once`},
		{"upper-case variant", `{"email":"a@b.c","EMAIL":"evil@b.c","password":"x"}`, `members "email" and "EMAIL" differ only in case`},
		{"capitalised known field", `{"Email":"a@b.c","password":"x"}`, `member "Email" must be spelled "email"`},
		{"upper-case known field alone", `{"PASSWORD":"x"}`, `member "PASSWORD" must be spelled "password"`},
		{"Kelvin sign in a name", `{"tò":1,"\u212Aey":1,"key":2}`, `differ only in case`},
		{"long s in a known field", `{"email":"a@b.c","pa\u017Fsword":"x"}`, `member "paſsword" must be spelled "password"`},
		{"nested duplicate", `{"x":{"a":1,"a":2}}`, `member "a" appears more than once`},
		{"duplicate in an object in an array", `{"x":[1,{"a":1,"A":2}]}`, `differ only in case`},
		{"unknown case variants", `{"foo":1,"FOO":2}`, `differ only in case`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/auth/login", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			var req credentials
			ok := decode(w, r, &req)
			if tt.err == "" {
				if !ok {
					t.Fatalf("refused: %d %s", w.Code, w.Body)
				}
				return
			}
			var e apiError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if ok || w.Code != http.StatusBadRequest || e.Error != "invalid_request" || !strings.Contains(e.Description, tt.err) {
				t.Fatalf("decode = %v, %d %s; want 400 invalid_request with %q", ok, w.Code, w.Body, tt.err)
			}
		})
	}
}

func TestFoldKey(t *testing.T) {
	for _, tt := range [][2]string{{"email", "EMAIL"}, {"key", "\u212Aey"}, {"ss", "ſs"}, {"σ", "ς"}} {
		if foldKey(tt[0]) != foldKey(tt[1]) {
			t.Errorf("foldKey(%+q) != foldKey(%+q)", tt[0], tt[1])
		}
	}
	if foldKey("email") == foldKey("emails") || foldKey("ss") == foldKey("ß") {
		t.Errorf("foldKey joins names that EqualFold keeps apart")
	}
}
