//go:build !unix

package matrix

import "time"

// CPUTime is 0 where getrusage is missing: the measurements that log it
// run on Linux.
func CPUTime() time.Duration { return 0 }
