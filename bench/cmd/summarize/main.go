// Command summarize reads the output of `go test -bench` for
// BenchmarkVerify and BenchmarkSign and writes a Markdown summary: the
// median CPU time (cpu-ns/op, when reported) and wall time (ns/op) of each
// algorithm × implementation and its ratio to the raw primitive of the
// same run, then the details of every benchmark.
//
// Usage:
//
//	summarize [-date D] [-go V] [-cpu MODEL] [-load-start L] [-load-end L] [-flags F] file...
//
// Benchmark names must be Family/Algorithm/Implementation (a trailing
// -GOMAXPROCS suffix is ignored); the implementation named "raw" is the
// baseline of its algorithm.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// samples are the measurements of one benchmark.
type samples struct {
	ns, cpu, bytes, allocs []float64
}

// metric picks one measurement of samples.
type metric struct {
	name string
	get  func(*samples) []float64
}

var (
	cpuMetric  = metric{"CPU time per op", func(s *samples) []float64 { return s.cpu }}
	wallMetric = metric{"wall time per op", func(s *samples) []float64 { return s.ns }}
)

// family is one Benchmark function: its algorithms and implementations in
// the order they first appear.
type family struct {
	name  string
	algs  []string
	impls []string
	runs  map[[2]string]*samples
}

var (
	lineRE   = regexp.MustCompile(`^Benchmark(\S+)\s+\d+\s+(.*)$`)
	procsRE  = regexp.MustCompile(`-\d+$`)
	baseline = "raw"
	// minRatio is the smallest credible ratio of a cold implementation to
	// raw: below it the samples must have been disturbed.
	minRatio = 0.97
)

func main() {
	var meta struct{ date, goVersion, cpu, loadStart, loadRounds, loadEnd, flags string }
	flag.StringVar(&meta.date, "date", "", "when the run started")
	flag.StringVar(&meta.goVersion, "go", "", "Go version")
	flag.StringVar(&meta.cpu, "cpu", "", "CPU model")
	flag.StringVar(&meta.loadStart, "load-start", "", "load average at the start (1, 5, 15 min)")
	flag.StringVar(&meta.loadRounds, "load-rounds", "", "1-minute load average before each round")
	flag.StringVar(&meta.loadEnd, "load-end", "", "load average at the end (1, 5, 15 min)")
	flag.StringVar(&meta.flags, "flags", "", "how the samples were taken")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: summarize [flags] file...")
		os.Exit(2)
	}
	var fams []*family
	for _, path := range flag.Args() {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fams, err = parse(f, fams)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
	}
	if len(fams) == 0 {
		fmt.Fprintln(os.Stderr, "no benchmark results found")
		os.Exit(1)
	}

	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintln(w, "# Token benchmark summary")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | |")
	fmt.Fprintln(w, "|---|---|")
	for _, kv := range [][2]string{
		{"date", meta.date}, {"Go", meta.goVersion}, {"CPU", meta.cpu},
		{"load average at start (1/5/15 min)", meta.loadStart},
		{"load average before each round (1 min)", meta.loadRounds},
		{"load average at end (1/5/15 min)", meta.loadEnd},
		{"samples", meta.flags},
	} {
		if kv[1] != "" {
			fmt.Fprintf(w, "| %s | %s |\n", kv[0], kv[1])
		}
	}
	fmt.Fprintln(w)
	if busy(meta.loadStart) || busy(meta.loadRounds) || busy(meta.loadEnd) {
		fmt.Fprintln(w, "**Note:** the machine was busy during this run (see the load averages): "+
			"other work shared the cores, so absolute times are inflated and noisier. "+
			"CPU time, and ratios against `raw` from the same run, are the more robust figures.")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Medians of the samples of each benchmark; in brackets the ratio to `raw` "+
		"(the bare signature primitive) of the same algorithm in the same run. "+
		"CPU time (`cpu-ns/op`: the process's CPU time over the timed loop, per op, "+
		"garbage collection included) is what a core spends on one op and is little moved "+
		"by other work sharing the machine; wall time (`ns/op`, what `go test` reports) "+
		"is the same on an idle machine and grows with its load.")
	for _, fam := range fams {
		writeFamily(w, fam)
	}
}

// busy reports whether any figure of a list of load averages is at least
// 1 (on a 2-core machine: half of it taken by other work).
func busy(loads string) bool {
	for _, f := range strings.Fields(loads) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(f, ","), 64)
		if err == nil && v >= 1 {
			return true
		}
	}
	return false
}

// parse adds the results read from r to fams.
func parse(r io.Reader, fams []*family) ([]*family, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		parts := strings.Split(procsRE.ReplaceAllString(m[1], ""), "/")
		if len(parts) != 3 {
			return nil, fmt.Errorf("benchmark %q is not Family/Algorithm/Implementation", m[1])
		}
		var fam *family
		for _, f := range fams {
			if f.name == parts[0] {
				fam = f
			}
		}
		if fam == nil {
			fam = &family{name: parts[0], runs: map[[2]string]*samples{}}
			fams = append(fams, fam)
		}
		if !slices.Contains(fam.algs, parts[1]) {
			fam.algs = append(fam.algs, parts[1])
		}
		if !slices.Contains(fam.impls, parts[2]) {
			fam.impls = append(fam.impls, parts[2])
		}
		key := [2]string{parts[1], parts[2]}
		s := fam.runs[key]
		if s == nil {
			s = &samples{}
			fam.runs[key] = s
		}
		fields := strings.Fields(m[2])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark %q: value %q: %v", m[1], fields[i], err)
			}
			switch fields[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "cpu-ns/op":
				s.cpu = append(s.cpu, v)
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
	}
	return fams, sc.Err()
}

func writeFamily(w io.Writer, fam *family) {
	fmt.Fprintf(w, "\n## %s\n", fam.name)
	metrics := []metric{wallMetric}
	if fam.has(cpuMetric) {
		metrics = []metric{cpuMetric, wallMetric}
	}
	for _, m := range metrics {
		writeTable(w, fam, m)
	}

	fmt.Fprintf(w, "\n<details><summary>%s: samples, spread and allocations</summary>\n\n", fam.name)
	fmt.Fprintln(w, "| benchmark | n | CPU median | CPU min | CPU max | wall median | wall min | wall max | B/op | allocs/op |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, alg := range fam.algs {
		for _, impl := range fam.impls {
			s := fam.runs[[2]string{alg, impl}]
			if s == nil || len(s.ns) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s/%s/%s | %d | %s | %s | %s | %s |\n",
				fam.name, alg, impl, len(s.ns), spread(s.cpu), spread(s.ns),
				count(s.bytes), count(s.allocs))
		}
	}
	fmt.Fprintln(w, "\n</details>")
}

// has reports whether every benchmark of fam has samples of m.
func (fam *family) has(m metric) bool {
	for _, s := range fam.runs {
		if len(m.get(s)) == 0 {
			return false
		}
	}
	return len(fam.runs) > 0
}

// writeTable writes the medians of m by algorithm × implementation with
// their ratios to raw.
func writeTable(w io.Writer, fam *family, m metric) {
	fmt.Fprintf(w, "\n### %s: %s\n\n", fam.name, m.name)
	fmt.Fprintf(w, "| algorithm | %s |\n", strings.Join(fam.impls, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(fam.impls)))
	var impossible []string
	for _, alg := range fam.algs {
		var base []float64
		if s := fam.runs[[2]string{alg, baseline}]; s != nil {
			base = m.get(s)
		}
		cells := make([]string, 0, len(fam.impls))
		for _, impl := range fam.impls {
			var xs []float64
			if s := fam.runs[[2]string{alg, impl}]; s != nil {
				xs = m.get(s)
			}
			if len(xs) == 0 {
				cells = append(cells, "–")
				continue
			}
			cell := duration(median(xs))
			if len(base) > 0 && impl != baseline {
				r := median(xs) / median(base)
				cell += " (" + ratio(r) + ")"
				if r < minRatio && !strings.Contains(impl, "warm") {
					impossible = append(impossible, fmt.Sprintf("%s/%s (%s)", alg, impl, ratio(r)))
				}
			}
			cells = append(cells, cell)
		}
		fmt.Fprintf(w, "| %s | %s |\n", alg, strings.Join(cells, " | "))
	}
	if len(impossible) > 0 {
		fmt.Fprintf(w, "\n**Warning:** by %s, %s %s below `raw`, which no implementation that does "+
			"the primitive can be: other work disturbed those samples, so treat these ratios as "+
			"rough and rerun on a quieter machine.\n", m.name, strings.Join(impossible, ", "),
			map[bool]string{true: "is", false: "are"}[len(impossible) == 1])
	}
}

// spread formats the median, min and max of xs as three table cells.
func spread(xs []float64) string {
	if len(xs) == 0 {
		return "– | – | –"
	}
	return duration(median(xs)) + " | " + duration(slices.Min(xs)) + " | " + duration(slices.Max(xs))
}

// median returns the median of xs (the mean of the middle two for an even
// count). xs must not be empty.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// duration formats nanoseconds with three significant digits.
func duration(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.3g ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	}
	return fmt.Sprintf("%.3g s", ns/1e9)
}

func ratio(r float64) string {
	if r >= 0.1 {
		return fmt.Sprintf("%.2f×", r)
	}
	return fmt.Sprintf("%.2g×", r)
}

// count formats the median of per-op counts, or "–" without samples.
func count(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	return strconv.FormatFloat(median(xs), 'f', -1, 64)
}
