package sslconn

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDriverDependency keeps the core free of database drivers.
func TestNoDriverDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/sslconn/sslconn/sslconn").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, driver := range []string{"go-sql-driver", "mongo-driver", "go-redis", "go-mssqldb", "FerretDB"} {
			if strings.Contains(dep, driver) {
				t.Errorf("sslconn depends on %s", dep)
			}
		}
	}
}
