package revocation

import (
	"strings"
	"testing"
	"time"
)

// TestWireRoundTrip: what the server encodes is what the follower reads.
func TestWireRoundTrip(t *testing.T) {
	in := []Entry{
		{Seq: 1, Kind: Token, Value: "j", ExpiresAt: t0.Add(time.Hour)},
		{Seq: 2, Kind: Session, Value: "s", ExpiresAt: t0.Add(time.Hour)},
		{Seq: 3, Kind: User, Value: "u", Cutoff: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour)},
		{Seq: 4, Kind: Key, Value: "kid", ExpiresAt: t0.Add(time.Hour)},
	}
	b, err := MarshalPage(in, 4, true, 1500*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePage(b)
	if err != nil {
		t.Fatal(err)
	}
	// The age is rounded up: never fresher than the source says.
	if p.Cursor != 4 || !p.More || p.Age != 2*time.Millisecond || len(p.Entries) != len(in) {
		t.Fatalf("page = %+v from %s", p, b)
	}
	for i, e := range p.Entries {
		if p.Errs[i] != nil || e.Seq != in[i].Seq || e.Kind != in[i].Kind || e.Value != in[i].Value ||
			!e.Cutoff.Equal(in[i].Cutoff) || !e.ExpiresAt.Equal(in[i].ExpiresAt) {
			t.Errorf("entry %d = %+v (%v), want %+v", i, e, p.Errs[i], in[i])
		}
	}
	h, err := ParseHeartbeat([]byte(strings.TrimPrefix(strings.TrimSuffix(string(AppendHeartbeat(nil, Heartbeat{Cursor: 9, Age: 3 * time.Second, Elapsed: 7*time.Second + 999*time.Microsecond})), "\n\n"), "event: sync\ndata: ")))
	// The elapsed time is rounded down: never fresher than it is.
	if err != nil || h.Cursor != 9 || h.Age != 3*time.Second || h.Elapsed != 7*time.Second {
		t.Fatalf("heartbeat = %+v, %v", h, err)
	}
	ev, err := AppendEvent(nil, in[2])
	if err != nil || !strings.HasPrefix(string(ev), "id: 3\nevent: revocation\ndata: {") || !strings.HasSuffix(string(ev), "}\n\n") {
		t.Fatalf("event = %q, %v", ev, err)
	}
}

// TestWireRefusesBadFreshness: a negative or absurd age, or a heartbeat
// without one, vouches for nothing.
func TestWireRefusesBadFreshness(t *testing.T) {
	for _, data := range []string{
		`{"cursor":1,"age_ms":-1}`, `{"cursor":1}`, `{"age_ms":0}`, `{"cursor":-1,"age_ms":0}`,
		`{"cursor":1,"age_ms":1e300}`, `{"cursor":1,"age_ms":99999999999999999}`, `not json`,
		`{"cursor":1,"age_ms":0}`, `{"cursor":1,"age_ms":0,"stream_ms":-1}`, `{"cursor":1,"age_ms":0,"stream_ms":1.5}`,
		`{"cursor":1,"age_ms":0,"stream_ms":"5"}`, `{"cursor":1,"age_ms":0,"stream_ms":99999999999999999}`,
	} {
		if h, err := ParseHeartbeat([]byte(data)); err == nil {
			t.Errorf("heartbeat %s accepted as %+v", data, h)
		}
	}
	for _, body := range []string{
		`{"revocations":[],"cursor":0,"age_ms":-5}`, `{"revocations":[],"cursor":0,"age_ms":"0"}`,
		`{"revocations":[]}`, `{"cursor":0}`,
	} {
		if p, err := ParsePage([]byte(body)); err == nil {
			t.Errorf("page %s accepted as %+v", body, p)
		}
	}
	// A page without age_ms (servers before it existed read their store
	// for each page) is fresh as of the request.
	if p, err := ParsePage([]byte(`{"revocations":[],"cursor":0,"more":false}`)); err != nil || p.Age != 0 {
		t.Fatalf("page without age_ms: %+v, %v", p, err)
	}
}
