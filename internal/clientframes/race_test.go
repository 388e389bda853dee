//go:build race

package clientframes

// raceEnabled says the tests run under the race detector, which allocates.
const raceEnabled = true
