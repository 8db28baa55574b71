//go:build race

package matrix

// raceEnabled: built with -race, under which sync.Pool keeps nothing and
// allocations measured in-process grow.
const raceEnabled = true
