//go:build race

package gateway

// raceEnabled: the race detector makes sync.Pool drop a random share of
// what is put back, so allocation counts of pooled code mean nothing.
const raceEnabled = true
