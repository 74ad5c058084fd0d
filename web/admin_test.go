package web

import "testing"

// TestValidReturnToAdmin: /login returns to the admin console's pages and
// to nothing that could leave them (another host, a dot segment, an
// encoded path, a query, a fragment).
func TestValidReturnToAdmin(t *testing.T) {
	for _, s := range []string{"/admin", "/admin/users", "/admin/users/u_abc-DEF_123", "/admin/events"} {
		if !ValidReturnTo(s) {
			t.Errorf("ValidReturnTo(%q) = false", s)
		}
	}
	for _, s := range []string{"/admin/", "/admin//evil.example", "//admin", "/adminx", "/admin/../account", "/admin/%2e%2e", "/admin?x=1",
		"/admin/users?q=a", "/admin#x", "/admin/a b", "/admin/\\evil", "https://evil.example/admin", "/admin/é", "/Admin"} {
		if ValidReturnTo(s) {
			t.Errorf("ValidReturnTo(%q) = true", s)
		}
	}
}
