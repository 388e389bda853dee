//go:build race

package frames

// raceEnabled says the tests run under the race detector, which allocates.
const raceEnabled = true
