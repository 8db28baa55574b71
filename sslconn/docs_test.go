package sslconn_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The README and docs/ are checked here so that what they state cannot
// drift from the repository: the README's length and first block, every
// relative link, the LICENSE, and any count of exported names.

// repoRoot is the repository's root, seen from this package's directory.
var repoRoot = filepath.Join("..")

const maxREADMELines = 250

// readDoc reads a file under the repository root, given by a slash path,
// with Windows line endings normalised.
func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// docFiles lists README.md and docs/*.md as slash paths from the root.
func docFiles(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatal("no docs/*.md")
	}
	files := []string{"README.md"}
	for _, m := range matches {
		files = append(files, "docs/"+filepath.Base(m))
	}
	return files
}

func TestREADMELength(t *testing.T) {
	readme := readDoc(t, "README.md")
	n := strings.Count(strings.TrimSuffix(readme, "\n"), "\n") + 1
	if n > maxREADMELines {
		t.Errorf("README.md has %d lines, more than %d: move the detail into docs/", n, maxREADMELines)
	}
}

// TestREADMEFirstBlock: the first code block is the two commands that work
// on a fresh machine, the demo and then the tests.
func TestREADMEFirstBlock(t *testing.T) {
	lines := strings.Split(readDoc(t, "README.md"), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatal("README.md has no code block")
	}
	var cmds []string
	for _, l := range lines[start+1:] {
		if strings.HasPrefix(l, "```") {
			break
		}
		if strings.TrimSpace(l) != "" {
			cmds = append(cmds, strings.TrimSpace(l))
		}
	}
	if len(cmds) != 2 || !strings.HasPrefix(cmds[0], "scripts/demo.sh") || !strings.HasPrefix(cmds[1], "scripts/test.sh") {
		t.Errorf("README.md's first code block must be scripts/demo.sh then scripts/test.sh, one a line; it is:\n%s", strings.Join(cmds, "\n"))
	}
}

var (
	// inlineLink matches [text](target) and ![alt](target); the target ends
	// at the first space (a title may follow) or the closing parenthesis.
	inlineLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	// refLink matches a reference definition: [label]: target
	refLink    = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s+(\S+)`)
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
	scheme     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	slugDelete = regexp.MustCompile(`[^\p{L}\p{N}\s_-]`)
)

// outsideFences returns a Markdown file's lines outside fenced code blocks.
func outsideFences(md string) []string {
	var out []string
	fenced := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, l)
		}
	}
	return out
}

// prose is a Markdown file without its code blocks and code spans, where
// brackets are code, not links.
func prose(md string) string {
	lines := outsideFences(md)
	for i, l := range lines {
		lines[i] = codeSpan.ReplaceAllString(l, "code")
	}
	return strings.Join(lines, "\n")
}

// anchors are the fragment names GitHub gives a Markdown file's headings:
// lower case, punctuation dropped (a code span's text kept), spaces as
// hyphens, repeats numbered.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range outsideFences(md) {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		slug := strings.ReplaceAll(slugDelete.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// TestDocLinks: every relative link in README.md and docs/*.md points at a
// file that exists, and a fragment into a Markdown file at a heading it has.
func TestDocLinks(t *testing.T) {
	for _, file := range docFiles(t) {
		md := readDoc(t, file)
		text := prose(md)
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, m := range refLink.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
				continue // absolute: http(s), mailto
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				if strings.HasPrefix(path, "/") {
					t.Errorf("%s: link %q is absolute to the site; make it relative", file, target)
					continue
				}
				dest = filepathToSlash(filepath.Join(filepath.Dir(filepath.FromSlash(file)), filepath.FromSlash(path)))
				if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(dest))); err != nil {
					t.Errorf("%s: link %q points at nothing: %v", file, target, err)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			if !anchors(readDoc(t, dest))[frag] {
				t.Errorf("%s: link %q: %s has no heading #%s", file, target, dest, frag)
			}
		}
	}
}

func filepathToSlash(p string) string { return filepath.ToSlash(filepath.Clean(p)) }

// TestLicense: LICENSE is the Apache License 2.0, whole, and the README
// says so.
func TestLicense(t *testing.T) {
	license := strings.Join(strings.Fields(readDoc(t, "LICENSE")), " ")
	for _, want := range []string{
		"Apache License Version 2.0, January 2004 http://www.apache.org/licenses/",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"1. Definitions.",
		"2. Grant of Copyright License.",
		"3. Grant of Patent License.",
		"4. Redistribution.",
		"5. Submission of Contributions.",
		"6. Trademarks.",
		"7. Disclaimer of Warranty.",
		"8. Limitation of Liability.",
		"9. Accepting Warranty or Additional Liability.",
		"END OF TERMS AND CONDITIONS",
		"APPENDIX: How to apply the Apache License to your work.",
		`Licensed under the Apache License, Version 2.0 (the "License");`,
	} {
		if !strings.Contains(license, want) {
			t.Errorf("LICENSE lacks %q: it must be the full Apache License 2.0", want)
		}
	}
	readme := readDoc(t, "README.md")
	if !strings.Contains(readme, "Apache License, Version 2.0") || !strings.Contains(readme, "(LICENSE)") {
		t.Error("README.md must say it is under the Apache License, Version 2.0, linking LICENSE")
	}
}

// exportedCount matches a stated count of package sslconn's exported names.
var exportedCount = regexp.MustCompile(`(\d+)\s+exported\s+(?:names|identifiers)`)

// TestDocCounts: a count of exported names stated in the docs is the count
// TestPublicAPISize computes.
func TestDocCounts(t *testing.T) {
	names, err := exportedNames(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range docFiles(t) {
		for _, m := range exportedCount.FindAllStringSubmatch(readDoc(t, file), -1) {
			if n, _ := strconv.Atoi(m[1]); n != len(names) {
				t.Errorf("%s says %q; package sslconn exports %d names", file, m[0], len(names))
			}
		}
	}
}
