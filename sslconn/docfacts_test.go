package sslconn_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/param"
)

// docSection is the text of the package doc (doc.go) from the heading
// "# name" to the next heading, comment markers removed.
func docSection(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		l = strings.TrimPrefix(strings.TrimPrefix(l, "//"), " ")
		if strings.HasPrefix(l, "# ") {
			in = l == "# "+name
			continue
		}
		if in {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("doc.go has no section %q", name)
	}
	return strings.Join(lines, "\n")
}

// TestDocErrorKinds (#29): the package doc's list of error kinds is the
// sentinels errors.go declares, no more and no fewer.
func TestDocErrorKinds(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, sp := range g.Specs {
				for _, n := range sp.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") {
						declared[n.Name] = true
					}
				}
			}
		}
	}
	doc := docSection(t, "Errors")
	for name := range declared {
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(doc) {
			t.Errorf("the package doc's Errors section does not name %s", name)
		}
	}
	for _, name := range regexp.MustCompile(`\bErr[A-Z]\w*`).FindAllString(doc, -1) {
		if !declared[name] {
			t.Errorf("the package doc names %s, which errors.go does not declare", name)
		}
	}
}

// TestDocParams (#29): the package doc's list of DSN parameters is the
// table internal/param reads, and each other name it gives for one is an
// alias param maps to that parameter.
func TestDocParams(t *testing.T) {
	// The parameters: the string constants of internal/param's table.
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "internal", "param", "param.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, sp := range g.Specs {
				for _, v := range sp.(*ast.ValueSpec).Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, _ := strconv.Unquote(lit.Value); param.Is(s) {
							table[s] = true
						}
					}
				}
			}
		}
	}
	if len(table) < 10 {
		t.Fatalf("read %d parameters from internal/param: %v", len(table), table)
	}
	listed := map[string]bool{}
	for _, l := range strings.Split(docSection(t, "DSN parameters"), "\n") {
		if !strings.HasPrefix(l, "\t") {
			continue
		}
		fields := strings.Fields(l)
		name := fields[0]
		listed[name] = true
		if canon, ok := param.Canonical(name); !ok || canon != name {
			t.Errorf("the package doc lists %s, which is not a parameter", name)
			continue
		}
		// The other names, after the last semicolon.
		if i := strings.LastIndex(l, ";"); i >= 0 {
			for _, alias := range strings.FieldsFunc(l[i+1:], func(r rune) bool { return r == ' ' || r == ',' }) {
				if canon, ok := param.Canonical(alias); !ok || canon != name {
					t.Errorf("the package doc gives %s for %s; param reads it as %q", alias, name, canon)
				}
			}
		}
	}
	for name := range table {
		if !listed[name] {
			t.Errorf("the package doc does not list the parameter %s", name)
		}
	}
}
