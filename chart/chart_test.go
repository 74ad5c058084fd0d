package chart

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2031, 3, 14, 15, 0, 0, 0, time.UTC)

// series returns points a step apart from t0 with the values.
func series(step time.Duration, values ...float64) []Point {
	pts := make([]Point, len(values))
	for i, v := range values {
		pts[i] = Point{At: t0.Add(time.Duration(i) * step), Value: v}
	}
	return pts
}

// TestGolden: the charts draw exactly the bytes of testdata/*.svg (look
// at them in a browser after -update).
func TestGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Chart
		pts  []Point
	}{
		{"bars", Chart{ID: "signins", Title: "Sign-ins, last hour"}, series(5*time.Minute, 3, 0, 7, 12, 4, 0, 0, 1, 9, 30, 2, 5)},
		{"line", Chart{ID: "sessions", Title: "Active sessions, last day", Kind: Line, Width: 400, Height: 120},
			series(time.Hour, 120, 118, 95, 80, 77, 90, 130, 180, 240, 260, 255, 250, 248, 251, 249, 240, 230, 228, 210, 190, 170, 150, 140, 125)},
		{"empty", Chart{ID: "none", Title: "Reuse detections", Desc: "No reuse detected."}, nil},
		{"escaped", Chart{ID: `x"><script>`, Title: `<script>alert("t")</script> & co`, Desc: `"quoted" <desc>`},
			series(time.Minute, 1, -4, math.NaN(), math.Inf(1), 0.123456)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.SVG(tt.pts)
			if again := tt.c.SVG(tt.pts); !bytes.Equal(got, again) {
				t.Fatal("two draws of the same chart differ")
			}
			path := filepath.Join("testdata", tt.name+".svg")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file:\n%s", tt.name, got)
			}
			checkSVG(t, got)
		})
	}
}

// checkSVG: well-formed XML, an image with its name and description,
// nothing a CSP without unsafe-inline would block or that fetches.
func checkSVG(t *testing.T, svg []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	ids := map[string]bool{}
	var labelledBy string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		if el, ok := tok.(xml.StartElement); ok {
			switch el.Name.Local {
			case "script", "style", "foreignObject", "image", "use", "a":
				t.Errorf("element %s", el.Name.Local)
			}
			for _, a := range el.Attr {
				switch {
				case a.Name.Local == "id":
					ids[a.Value] = true
				case a.Name.Local == "aria-labelledby":
					labelledBy = a.Value
				case a.Name.Local == "style" || strings.HasPrefix(a.Name.Local, "on") || a.Name.Local == "href":
					t.Errorf("attribute %s on %s", a.Name.Local, el.Name.Local)
				}
			}
		}
	}
	for _, id := range strings.Fields(labelledBy) {
		if !ids[id] {
			t.Errorf("aria-labelledby names %q, which is not in the chart", id)
		}
	}
	if labelledBy == "" || !bytes.Contains(svg, []byte(`role="img"`)) {
		t.Error("no role img with aria-labelledby")
	}
	if n := bytes.Count(svg, []byte("http")); n != 1 { // the xmlns alone
		t.Errorf("%d mentions of http; want the namespace alone", n)
	}
}

// TestEscapes: text from the caller cannot open an element.
func TestEscapes(t *testing.T) {
	svg := string(Chart{ID: "a b<", Title: "</title><script>x</script>", Desc: `a"b`}.SVG(series(time.Minute, 1)))
	if !strings.Contains(svg, "&lt;/title&gt;&lt;script&gt;") {
		t.Errorf("title not escaped: %s", svg)
	}
	for _, bad := range []string{"<script", `a"b`, "a b<"} {
		if strings.Contains(svg, bad) {
			t.Errorf("%q in %s", bad, svg)
		}
	}
	if !strings.Contains(svg, `id="ab-title"`) {
		t.Errorf("id not reduced to its safe characters: %s", svg)
	}
}

// TestScale: the scale's top is the least 1, 2 or 5 times a power of
// ten at or above the peak, and the peak's bar reaches up to it.
func TestScale(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 3: 5, 7: 10, 12: 20, 30: 50, 999: 1000, 1001: 2000} {
		if got := ceiling(v); got != want {
			t.Errorf("ceiling(%v) = %v; want %v", v, got, want)
		}
	}
	svg := string(Chart{}.SVG(series(time.Minute, 10)))
	if !strings.Contains(svg, `y="6" width=`) { // the top of the plot
		t.Errorf("the peak does not reach the top: %s", svg)
	}
}

func BenchmarkDayOfMinutes(b *testing.B) {
	pts := make([]Point, 24*60)
	for i := range pts {
		pts[i] = Point{At: t0.Add(time.Duration(i) * time.Minute), Value: float64(i % 17)}
	}
	c := Chart{ID: "day", Title: "Sign-ins, last day", Width: 720}
	for b.Loop() {
		c.SVG(pts)
	}
}

// TestHTML: the template.HTML form is the SVG itself.
func TestHTML(t *testing.T) {
	c := Chart{ID: "h", Title: "<t>"}
	if got, want := string(c.HTML(series(time.Minute, 1, 2))), string(c.SVG(series(time.Minute, 1, 2))); got != want {
		t.Errorf("HTML = %s; want %s", got, want)
	}
}
