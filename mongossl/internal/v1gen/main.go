// Command v1gen writes mongossl/mongov1 (mongo-driver v1.17) from mongossl
// (mongo-driver v2), library and tests, so that the two adapters have one
// source. go generate ./mongossl runs it in the mongossl directory:
//
//	go run ./internal/v1gen [-o dir]
//
// For each .go file of mongossl except those in skip it writes
// mongov1/NAME (mongossl*.go becomes mongov1*.go) that is the file with
//
//   - its markers applied and removed (below);
//   - the package renamed (mongossl to mongov1, mongossl_test to
//     mongov1_test), and an external test's import of mongossl, with the
//     names it qualifies, turned into mongov1's;
//   - the imports of go.mongodb.org/mongo-driver/v2/... turned into their
//     v1 counterparts go.mongodb.org/mongo-driver/...;
//   - a "Code generated" first line, formatted as gofmt does.
//
// The output depends on the source alone. The APIs' differences are marked
// in mongossl's source, where they are, in comments of two kinds:
//
//	//v1:replace OLD => NEW
//
// replaces every OLD by NEW (NEW may be empty) in the top-level declaration
// the comment is in or documents (in a doc comment, where go doc does not
// show it: the place for an Example's), or, outside any, in the whole file.
// OLD must occur, or the generator fails.
//
//	x := v2Only() //v1:omit why
//
//	//v1:omit why
//	...
//	//v1:end
//
// leaves out the line it ends or, standing alone, the lines up to
// //v1:end. (Neither in a doc comment: gofmt moves directives to its end.)
//
// Generated files in the output directory that the source no longer makes
// are removed; files without the "Code generated" line (doc.go) are
// mongov1's own and left alone.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// skip are the files of mongossl that have no generated counterpart.
var skip = map[string]string{
	"doc.go":                "mongov1 has its own, for v1's users",
	"deps_test.go":          "about both packages' builds",
	"generate_test.go":      "checks the generated files",
	"fuzz_test.go":          "its seeds are in mongossl/testdata",
	"bench_test.go":         "measures the v2 driver against mongossl",
	"bench_connect_test.go": "measures the v2 driver against mongossl",
}

const (
	srcPkg    = "mongossl"
	dstPkg    = "mongov1"
	srcImport = "github.com/sslconn/sslconn/mongossl"
	dstImport = "github.com/sslconn/sslconn/mongossl/mongov1"
	v2        = "go.mongodb.org/mongo-driver/v2/"
	v1        = "go.mongodb.org/mongo-driver/"
	marker    = "//v1:"
)

// generatedLine is Go's convention for a generated file's first line.
var generatedLine = regexp.MustCompile(`^// Code generated .* DO NOT EDIT\.$`)

func main() {
	out := flag.String("o", dstPkg, "the directory to write")
	flag.Parse()
	files, err := generate(".")
	if err == nil {
		err = write(*out, files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "v1gen:", err)
		os.Exit(1)
	}
}

// generate returns the generated files, by name, for the source in dir.
func generate(dir string) (map[string][]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, path := range names {
		name := filepath.Base(path)
		if _, ok := skip[name]; ok {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		out, err := transform(name, bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n")))
		if err != nil {
			return nil, err
		}
		files[dstName(name)] = out
	}
	return files, nil
}

// dstName is the name of name's generated counterpart.
func dstName(name string) string {
	if rest, ok := strings.CutPrefix(name, srcPkg); ok {
		return dstPkg + rest
	}
	return name
}

// transform returns the generated counterpart of the file name.
func transform(name string, src []byte) ([]byte, error) {
	src, err := applyMarkers(name, src)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("after its markers: %w", err)
	}
	switch f.Name.Name {
	case srcPkg:
		f.Name.Name = dstPkg
	case srcPkg + "_test":
		f.Name.Name = dstPkg + "_test"
	default:
		return nil, fmt.Errorf("%s: package %s", name, f.Name.Name)
	}
	importsSelf := false
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, err
		}
		switch {
		case path == srcImport:
			if imp.Name != nil {
				return nil, fmt.Errorf("%s: mongossl imported as %s", name, imp.Name.Name)
			}
			importsSelf = true
			path = dstImport
		case strings.HasPrefix(path, v2):
			path = v1 + strings.TrimPrefix(path, v2)
		}
		imp.Path.Value = strconv.Quote(path)
	}
	if importsSelf {
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == srcPkg {
					id.Name = dstPkg
				}
			}
			return true
		})
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "// Code generated by mongossl/internal/v1gen from mongossl/%s; DO NOT EDIT.\n\n", name)
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, err
	}
	// format.Source sorts the imports the new paths may have reordered.
	return format.Source(buf.Bytes())
}

// edit replaces src[from:to] with text.
type edit struct {
	from, to int
	text     string
}

// applyMarkers returns src with its //v1: markers applied and removed.
func applyMarkers(name string, src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	tf := fset.File(f.Pos())
	off := func(p token.Pos) int { return tf.Offset(p) }
	where := func(c *ast.Comment) string { return fset.Position(c.Pos()).String() }
	docs := map[*ast.CommentGroup]bool{f.Doc: true}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			docs[d.Doc] = true
		case *ast.GenDecl:
			docs[d.Doc] = true
		}
	}
	// scope is the top-level declaration, doc comment included, that
	// holds p; or the whole file.
	scope := func(p token.Pos) (int, int) {
		for _, d := range f.Decls {
			start := d.Pos()
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Doc != nil {
					start = d.Doc.Pos()
				}
			case *ast.GenDecl:
				if d.Doc != nil {
					start = d.Doc.Pos()
				}
			}
			if start <= p && p < d.End() {
				return off(start), off(d.End())
			}
		}
		return 0, len(src)
	}

	var (
		edits   []edit
		markers []edit // the markers' own text, which OLD may not match
		omitAt  *ast.Comment
		omitOff int
		errs    []error
	)
	type replace struct {
		c                *ast.Comment
		old, new         string
		scopeLo, scopeHi int
	}
	var replaces []replace
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			text, ok := strings.CutPrefix(c.Text, marker)
			if !ok {
				continue
			}
			verb, arg, _ := strings.Cut(text, " ")
			lineLo, lineHi, alone := lineOf(src, off(c.Pos()), off(c.End()))
			// The marker goes: its whole line when it stands alone, else
			// the comment and the blanks before it.
			gone := edit{from: lineLo, to: lineHi}
			if !alone {
				gone.from = off(c.Pos())
				for gone.from > lineLo && (src[gone.from-1] == ' ' || src[gone.from-1] == '\t') {
					gone.from--
				}
				gone.to = off(c.End())
			}
			markers = append(markers, gone)
			if verb != "replace" && docs[cg] {
				errs = append(errs, fmt.Errorf("%s: %s%s in a doc comment, where gofmt moves it", where(c), marker, verb))
				continue
			}
			switch verb {
			case "replace":
				old, new, ok := strings.Cut(arg, " =>")
				new = strings.TrimPrefix(new, " ")
				if !ok || old == "" {
					errs = append(errs, fmt.Errorf("%s: want %sreplace OLD => NEW", where(c), marker))
					continue
				}
				lo, hi := scope(c.Pos())
				replaces = append(replaces, replace{c, old, new, lo, hi})
				edits = append(edits, gone)
			case "omit":
				switch {
				case omitAt != nil:
					errs = append(errs, fmt.Errorf("%s: %somit inside the %somit of %s", where(c), marker, marker, where(omitAt)))
				case alone:
					omitAt, omitOff = c, lineLo
				default: // the line it ends
					edits = append(edits, edit{from: lineLo, to: lineHi})
				}
			case "end":
				if omitAt == nil || !alone {
					errs = append(errs, fmt.Errorf("%s: %send without a %somit on a line of its own before it", where(c), marker, marker))
					continue
				}
				edits = append(edits, edit{from: omitOff, to: lineHi})
				omitAt = nil
			default:
				errs = append(errs, fmt.Errorf("%s: unknown marker %s%s (want replace, omit or end)", where(c), marker, verb))
			}
		}
	}
	if omitAt != nil {
		errs = append(errs, fmt.Errorf("%s: %somit without %send", where(omitAt), marker, marker))
	}
	for _, r := range replaces {
		n := 0
		for i := r.scopeLo; i < r.scopeHi; {
			j := bytes.Index(src[i:r.scopeHi], []byte(r.old))
			if j < 0 {
				break
			}
			at := edit{from: i + j, to: i + j + len(r.old), text: r.new}
			i = at.to
			if slices.ContainsFunc(markers, func(m edit) bool { return overlap(m, at) }) {
				continue
			}
			edits = append(edits, at)
			n++
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("%s: %q occurs nowhere in its scope", where(r.c), r.old))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return apply(name, src, edits)
}

// lineOf returns the bounds of the line that holds src[from:to], its
// newline included, and whether it holds nothing else but blanks.
func lineOf(src []byte, from, to int) (lo, hi int, alone bool) {
	lo = bytes.LastIndexByte(src[:from], '\n') + 1
	hi = len(src)
	if i := bytes.IndexByte(src[to:], '\n'); i >= 0 {
		hi = to + i + 1
	}
	alone = len(bytes.TrimSpace(src[lo:from])) == 0 && len(bytes.TrimSpace(src[to:hi])) == 0
	return lo, hi, alone
}

func overlap(a, b edit) bool { return a.from < b.to && b.from < a.to }

// apply applies edits, which may be nested (an omitted line with a marker
// in it) but not overlap otherwise: a replacement inside an omitted range
// goes with it.
func apply(name string, src []byte, edits []edit) ([]byte, error) {
	slices.SortFunc(edits, func(a, b edit) int {
		if a.from != b.from {
			return a.from - b.from
		}
		return b.to - a.to // the wider first
	})
	var out bytes.Buffer
	at := 0
	for _, e := range edits {
		switch {
		case e.to <= at && e.from < at: // inside the previous edit
			continue
		case e.from < at:
			return nil, fmt.Errorf("%s: markers' edits overlap at offset %d", name, e.from)
		}
		out.Write(src[at:e.from])
		out.WriteString(e.text)
		at = e.to
	}
	out.Write(src[at:])
	return out.Bytes(), nil
}

// write makes dir hold files: it writes those that differ and removes the
// generated files that are not among them. It never overwrites or removes
// a file that is not generated.
func write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	existing, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	for _, path := range existing {
		name := filepath.Base(path)
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		generated := isGenerated(old)
		want, ok := files[name]
		switch {
		case ok && !generated:
			return fmt.Errorf("%s is not generated: it would be overwritten", path)
		case !ok && generated:
			if err := os.Remove(path); err != nil {
				return err
			}
		case ok && bytes.Equal(old, want):
			delete(files, name)
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// isGenerated reports whether the file src starts with the line that
// marks a generated file.
func isGenerated(src []byte) bool {
	line, _, _ := bytes.Cut(src, []byte("\n"))
	return generatedLine.Match(bytes.TrimSuffix(line, []byte("\r")))
}
