package sslconn_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxExported keeps the public API small enough to read in one sitting:
// types, functions, methods of exported types, constants and variables,
// each counted. (60 until the certificate issue added ErrBadCertificate
// and WithSystemRoots, each a case users meet that nothing else covers;
// 62 until WithMeterProvider and WithTracerProvider, OpenTelemetry's own
// way in, which no callback can replace.)
const maxExported = 64

func TestPublicAPISize(t *testing.T) {
	names, err := exportedNames(".")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d exported identifiers: %s", len(names), strings.Join(names, " "))
	if len(names) > maxExported {
		t.Errorf("package sslconn exports %d identifiers, more than %d: engine plumbing belongs in internal/core", len(names), maxExported)
	}
}

// exportedNames lists, sorted, what the package in dir exports: types,
// functions, methods of exported types, constants and variables, from its
// non-test files. docs_test.go checks the counts the docs state against it.
func exportedNames(dir string) ([]string, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv != nil {
					recv := d.Recv.List[0].Type
					if s, ok := recv.(*ast.StarExpr); ok {
						recv = s.X
					}
					if id, ok := recv.(*ast.Ident); !ok || !id.IsExported() {
						continue
					}
					names = append(names, recv.(*ast.Ident).Name+"."+d.Name.Name)
					continue
				}
				names = append(names, d.Name.Name)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(names)
	return names, nil
}
