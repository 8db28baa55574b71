package mongossl

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOneDriverEach: importing mongossl builds mongo-driver v2 only, and
// importing mongossl/mongov1 builds v1 only; the code they share
// (internal/mongocore) imports neither.
func TestOneDriverEach(t *testing.T) {
	const v1, v2 = "go.mongodb.org/mongo-driver/", "go.mongodb.org/mongo-driver/v2/"
	for pkg, other := range map[string]func(string) bool{
		"github.com/sslconn/sslconn/mongossl": func(dep string) bool {
			return strings.HasPrefix(dep, v1) && !strings.HasPrefix(dep, v2)
		},
		"github.com/sslconn/sslconn/mongossl/mongov1":            func(dep string) bool { return strings.HasPrefix(dep, v2) },
		"github.com/sslconn/sslconn/mongossl/internal/mongocore": func(dep string) bool { return strings.HasPrefix(dep, v1) },
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if other(dep) {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
