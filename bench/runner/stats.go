package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of d,
// or 0 for an empty slice. It sorts a copy so the caller's order is kept.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(rank, len(s)-1))]
}

// median returns the median of v (the mean of the middle two for an even
// count), or 0 for an empty slice.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}

// perSecond is count divided by d in seconds.
func perSecond(count int, d time.Duration) float64 {
	return float64(count) / d.Seconds()
}

// micros, millis and secs express a duration in the unit a metric is shown in.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func secs(d time.Duration) float64 { return d.Seconds() }

// perItemMicros is a CPU (or other) duration divided over n items, in µs.
func perItemMicros(d time.Duration, n int) float64 { return micros(d) / float64(n) }
