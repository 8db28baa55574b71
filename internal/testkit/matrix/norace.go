//go:build !race

package matrix

// raceEnabled: built with -race (see race.go).
const raceEnabled = false
