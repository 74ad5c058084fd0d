package bench

import (
	"testing"

	"golang.org/x/sys/unix"
)

// measure runs op in b's timed loop with allocations reported, and reports
// besides the wall time the CPU time of the process per op ("cpu-ns/op").
// With -cpu 1 the process runs one goroutine at a time, so this is the
// op's own cost including its garbage collection, and it hardly moves when
// other work on a shared machine takes turns on the cores, unlike ns/op.
func measure(b *testing.B, op func() error) {
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the CPU time the process has used, in nanoseconds.
func cpuTime(b *testing.B) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return ts.Nano()
}
