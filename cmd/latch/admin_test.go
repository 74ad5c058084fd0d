package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAdminSetupLinkAndCreate: latch serve on a new deployment logs a
// setup link that works; latch admin create, run while serve runs on the
// same data directory, creates an administrator, after which the link is
// void and the next start logs none; --promote makes a user one.
func TestAdminSetupLinkAndCreate(t *testing.T) {
	dir := newDeployment(t, nil)
	srv := startServe(t, nil, "--data-dir", dir)
	var link string
	deadline := time.Now().Add(10 * time.Second)
	for link == "" {
		if m := regexp.MustCompile(`setup_url=(\S+)`).FindStringSubmatch(srv.logs.String()); m != nil {
			link = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve logged no setup link:\n%s", srv.logs)
		} else {
			time.Sleep(10 * time.Millisecond) // polling the log, with a deadline
		}
	}
	if !strings.Contains(link, "/admin/setup?token=") {
		t.Fatalf("setup link %q", link)
	}
	get := func() int {
		t.Helper()
		u := srv.base + link[strings.Index(link, "/admin/setup"):]
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := get(); c != http.StatusOK {
		t.Fatalf("the setup link: %d", c)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"admin", "create", "--data-dir", dir, "--password-stdin"}, "--email"},
		{[]string{"admin", "create", "--data-dir", dir, "--email", "x@example.com"}, "--password-stdin"},
		{[]string{"admin", "create", "--data-dir", dir, "--email", "nobody@example.com", "--promote"}, "no such user"},
		{[]string{"admin", "create", "--data-dir", dir, "--email", "first@example.com", "--password-stdin"}, "--promote"},
	} {
		if _, _, err := run(t, "a good password\n", nil, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
	out, _, err := run(t, "a good admin password\n", nil, "admin", "create", "--data-dir", dir, "--email", "root@example.com", "--password-stdin")
	if err != nil || !strings.Contains(out, "created administrator") {
		t.Fatalf("admin create: %q %v", out, err)
	}
	if c := get(); c != http.StatusGone {
		t.Fatalf("the setup link once an administrator exists: %d", c)
	}
	if code := srv.login(t, "root@example.com", "a good admin password"); code != 200 {
		t.Fatalf("the administrator signs in: %d", code)
	}
	if out, _, err := run(t, "", nil, "admin", "create", "--data-dir", dir, "--email", "First@Example.com", "--promote"); err != nil || !strings.Contains(out, "is an administrator") {
		t.Fatalf("admin create --promote: %q %v", out, err)
	}
	srv.stop()

	again := startServe(t, nil, "--data-dir", dir)
	// "next step" is logged after the setup link would be.
	for !strings.Contains(again.logs.String(), "next step") {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("no start line:\n%s", again.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(again.logs.String(), "setup_url") {
		t.Fatalf("a setup link with administrators:\n%s", again.logs)
	}
}
