// Package chart draws small time-series charts as SVG on the server, for
// pages served under a strict Content-Security-Policy: no script, no
// style attribute or element (presentation attributes only, which CSP does
// not govern), no font or image fetched from anywhere. Colours are
// currentColor, so the page's stylesheet decides them.
//
// A chart is an image with an accessible name (its title) and description
// (given, or a summary of the series: its span, total and peak), and each
// bar of a bar chart carries its own time and value as a tooltip. Output
// is deterministic: the same series draws the same bytes.
package chart

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Point is a value at a time: the start of the step it counts.
type Point struct {
	At    time.Time
	Value float64
}

// Kind is how a series is drawn.
type Kind int

const (
	// Bars draws a bar per point: counts per step.
	Bars Kind = iota
	// Line draws a line through the points.
	Line
)

// Chart describes a chart; its zero value is a bar chart of the default
// size.
type Chart struct {
	// ID prefixes the ids of the title and description elements, which
	// must be unique within a page: letters, digits, - and _ are kept,
	// anything else dropped.
	ID string
	// Title is the chart's accessible name, shown as its tooltip.
	Title string
	// Desc describes the chart for assistive technology; if empty, a
	// summary of the series is generated.
	Desc string
	Kind Kind
	// Width and Height in CSS pixels; 0 for 320 by 96.
	Width, Height int
}

// The margins, in pixels, around the plot: the value labels on the left,
// the time labels below.
const (
	marginLeft   = 36
	marginRight  = 4
	marginTop    = 6
	marginBottom = 18
	fontSize     = 10
)

// SVG draws the points, oldest first, as an svg element. Values that are
// negative, infinite or NaN are drawn as 0. Times are labelled in UTC.
func (c Chart) SVG(pts []Point) []byte {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 320
	}
	if h <= 0 {
		h = 96
	}
	id := ident(c.ID)
	if id == "" {
		id = "chart"
	}
	vals := make([]float64, len(pts))
	var total, peak float64
	for i, p := range pts {
		v := p.Value
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		vals[i] = v
		total += v
		peak = max(peak, v)
	}
	top := ceiling(peak)
	plotW := float64(w - marginLeft - marginRight)
	plotH := float64(h - marginTop - marginBottom)
	y := func(v float64) float64 { return float64(marginTop) + plotH - v/top*plotH }

	desc := c.Desc
	if desc == "" {
		desc = summary(pts, total, peak)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc" font-family="sans-serif" font-size="%d">`+"\n",
		w, h, w, h, id, id, fontSize)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`+"\n", id, esc(c.Title))
	fmt.Fprintf(&b, `<desc id="%s-desc">%s</desc>`+"\n", id, esc(desc))
	// Axes: the value scale on the left, the baseline, the time span.
	base := y(0)
	fmt.Fprintf(&b, `<g fill="currentColor" aria-hidden="true"><text x="%d" y="%s" text-anchor="end" dominant-baseline="hanging">%s</text><text x="%d" y="%s" text-anchor="end">0</text></g>`+"\n",
		marginLeft-4, num(float64(marginTop)), esc(number(top)), marginLeft-4, num(base))
	fmt.Fprintf(&b, `<path d="M%d %sH%d" stroke="currentColor" stroke-opacity="0.4" fill="none"/>`+"\n", marginLeft, num(base), w-marginRight)
	if len(pts) > 0 {
		first, last := pts[0].At.UTC(), pts[len(pts)-1].At.UTC()
		layout := "15:04"
		if last.Sub(first) >= 24*time.Hour || first.YearDay() != last.YearDay() {
			layout = "Jan 2 15:04"
		}
		fmt.Fprintf(&b, `<g fill="currentColor" aria-hidden="true"><text x="%d" y="%d">%s</text><text x="%d" y="%d" text-anchor="end">%s UTC</text></g>`+"\n",
			marginLeft, h-4, esc(first.Format(layout)), w-marginRight, h-4, esc(last.Format(layout)))
	}
	switch {
	case len(pts) == 0:
	case c.Kind == Line:
		b.WriteString(`<path d="`)
		for i, v := range vals {
			x := float64(marginLeft)
			if len(vals) > 1 {
				x += plotW * float64(i) / float64(len(vals)-1)
			}
			if i == 0 {
				b.WriteByte('M')
			} else {
				b.WriteByte('L')
			}
			b.WriteString(num(x))
			b.WriteByte(' ')
			b.WriteString(num(y(v)))
		}
		b.WriteString(`" stroke="currentColor" stroke-width="1.5" fill="none" stroke-linejoin="round"/>` + "\n")
	default:
		slot := plotW / float64(len(vals))
		gap := min(1, slot/4)
		width := num(slot - gap)
		var stamp [32]byte
		b.Grow(len(vals) * 120)
		b.WriteString(`<g fill="currentColor">` + "\n")
		for i, v := range vals {
			x := float64(marginLeft) + slot*float64(i)
			b.WriteString(`<rect x="`)
			b.WriteString(num(x + gap/2))
			b.WriteString(`" y="`)
			b.WriteString(num(y(v)))
			b.WriteString(`" width="`)
			b.WriteString(width)
			b.WriteString(`" height="`)
			b.WriteString(num(base - y(v)))
			b.WriteString(`"><title>`)
			b.Write(pts[i].At.UTC().AppendFormat(stamp[:0], "Jan 2 15:04")) // no markup in a time
			b.WriteString(` UTC: `)
			b.WriteString(number(v))
			b.WriteString("</title></rect>\n")
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// HTML is SVG for an html/template page: the chart is built from escaped
// text and numbers only, so it is safe to embed as it is.
func (c Chart) HTML(pts []Point) template.HTML {
	return template.HTML(c.SVG(pts)) // #nosec G203 -- every text is escaped by SVG
}

// summary describes a series in words.
func summary(pts []Point, total, peak float64) string {
	if len(pts) == 0 {
		return "No data."
	}
	first, last := pts[0].At.UTC(), pts[len(pts)-1].At.UTC()
	return fmt.Sprintf("%d points from %s to %s UTC: total %s, peak %s.",
		len(pts), first.Format("2006-01-02 15:04"), last.Format("2006-01-02 15:04"), number(total), number(peak))
}

// ceiling returns the top of the value scale: the least 1, 2 or 5 times a
// power of ten at or above v (1 for 0).
func ceiling(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// number formats a value for people: whole numbers without decimals,
// others with up to two.
func number(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// num formats a coordinate with at most two decimals.
func num(v float64) string {
	s := strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
	if s == "-0" {
		return "0"
	}
	return s
}

// esc escapes text for an SVG element or attribute.
func esc(s string) string { return html.EscapeString(s) }

// ident keeps the characters of s allowed in the chart's ids.
func ident(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, s)
}
