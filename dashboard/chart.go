package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// bar is one run's bar of a chart.
type bar struct {
	value float64
	label string // the bar's title: when, and how much
	class string // bar, plus cur (the job shown) or failed
}

// Chart geometry, in the SVG's own units: it scales to the page's width.
const (
	chartW, chartH = 800, 150
	chartTop       = 22 // room for the maximum's label
	chartBottom    = 20 // room for the first and last dates
)

// barChart draws values as an inline SVG bar chart, server-side: no
// script. Its text is escaped; its look is the stylesheet's (.chart).
func barChart(title, unit string, bars []bar, first, last time.Time) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	maxV := 0.0
	for _, x := range bars {
		maxV = max(maxV, x.value)
	}
	plotH := float64(chartH - chartTop - chartBottom)
	fmt.Fprintf(&b, `<line class="axis" x1="0" y1="%d" x2="%d" y2="%d"></line>`, chartH-chartBottom, chartW, chartH-chartBottom)
	fmt.Fprintf(&b, `<text class="label" x="0" y="14">max %s %s</text>`, template.HTMLEscapeString(compact(maxV)), template.HTMLEscapeString(unit))
	if n := len(bars); n > 0 {
		slot := float64(chartW) / float64(n)
		w := max(1, slot*0.7)
		for i, x := range bars {
			h := 0.0
			if maxV > 0 {
				h = x.value / maxV * plotH
			}
			if x.value > 0 {
				h = max(h, 1) // a run that did something shows
			}
			fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>`,
				x.class, float64(i)*slot+(slot-w)/2, float64(chartH-chartBottom)-h, w, h, template.HTMLEscapeString(x.label))
		}
		fmt.Fprintf(&b, `<text class="label" x="0" y="%d">%s</text>`, chartH-4, first.UTC().Format("2006-01-02 15:04"))
		if n > 1 {
			fmt.Fprintf(&b, `<text class="label" x="%d" y="%d" text-anchor="end">%s</text>`, chartW, chartH-4, last.UTC().Format("2006-01-02 15:04"))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// compact writes a chart's number shortly: 950, 12.5k, 3.2M, 1.5.
func compact(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// runCharts draws a workflow's runs: rows and seconds per run, the job
// shown (cur) marked.
func runCharts(runs []Run, cur string) (rows, secs template.HTML) {
	rb, sb := make([]bar, len(runs)), make([]bar, len(runs))
	var first, last time.Time
	for i, r := range runs {
		class := "bar"
		if r.Status == "failed" {
			class += " failed"
		}
		if r.JobID == cur {
			class += " cur"
		}
		when := r.StartedAt.UTC().Format("2006-01-02 15:04")
		rb[i] = bar{float64(r.Rows), fmt.Sprintf("%s: %s rows (%s upserted, %s deleted)", when, thousands(r.Rows), thousands(r.Upserted), thousands(r.Deleted)), class}
		sb[i] = bar{r.Seconds, fmt.Sprintf("%s: %.1fs", when, r.Seconds), class}
		if i == 0 {
			first = r.StartedAt
		}
		last = r.StartedAt
	}
	return barChart("Rows per run", "rows", rb, first, last), barChart("Seconds per run", "s", sb, first, last)
}
