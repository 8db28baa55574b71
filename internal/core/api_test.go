package core

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"sort"
	"strings"
	"testing"
)

// maxExported bounds what the engine shows the adapters. Counted the way
// go doc -all lists the package, from its non-test files: each exported
// top-level function, type, variable and constant (each name of a group),
// and each exported method of an exported type ("Config.Dial"). Struct
// fields are not counted, nor the methods a type gets from an embedded
// type of another package (Config's from *sslconn.Config), which go doc
// does not list either.
const maxExported = 60

func TestExportedNames(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f) // every platform's files: the names are the same
	}
	d, err := doc.NewFromFiles(fset, files, "github.com/sslconn/sslconn/internal/core")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			for _, n := range v.Names {
				if ast.IsExported(n) {
					names = append(names, n)
				}
			}
		}
	}
	values(d.Consts)
	values(d.Vars)
	for _, f := range d.Funcs {
		names = append(names, f.Name)
	}
	for _, typ := range d.Types {
		names = append(names, typ.Name)
		values(typ.Consts)
		values(typ.Vars)
		for _, f := range typ.Funcs {
			names = append(names, f.Name)
		}
		for _, m := range typ.Methods {
			names = append(names, typ.Name+"."+m.Name)
		}
	}
	sort.Strings(names)
	t.Logf("%d exported names: %s", len(names), strings.Join(names, " "))
	if len(names) > maxExported {
		t.Errorf("package core exports %d names, more than %d: unexport what only core uses, or move a cohesive group to a package of its own", len(names), maxExported)
	}
}
