package main

// config.go reads keepalived.conf the way keepalived's lib/parser.c does:
//
//  1. lines are read from the file and from every `include`d file (glob
//     relative to the including file's directory, bounded depth);
//  2. comments ('#' and '!' outside quotes) are stripped;
//  3. conditional lines `@ID ...` / `@^ID ...` are kept or dropped by the
//     config id (-i, default the short host name);
//  4. `$NAME=value` lines define parameters (multi-line with a trailing
//     '\'), `$NAME` / `${NAME}` are expanded recursively at use;
//  5. `~SEQ(var, start, step, end)`, `~SEQx(...)` and `~LST(var, v1, ...)`
//     repeat the rest of the line for each value;
//  6. each line is split into words (quotes and escapes as keepalived's
//     man page describes) and '{' '}' are separate tokens wherever they
//     appear, so braces can be on the same or the next line;
//  7. the words become a tree of nodes, which config_keywords.go walks
//     with one keyword table per block, producing the model of
//     config_model.go.
//
// Every limit (include depth, expansion depth, generated line count) is
// bounded so that no input can hang or exhaust memory; crossing one is an
// error naming file:line.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Parser limits. keepalived has no include depth limit of its own; ours
// stops include loops. The others bound what ~SEQ/~LST and recursive
// $NAME expansion can generate.
const (
	maxIncludeDepth = 8
	maxExpandDepth  = 32
	maxLineBytes    = 64 << 10
	maxConfigLines  = 1 << 20 // logical lines after expansion
	maxConfigBytes  = 64 << 20
)

// severity of a diagnostic.
type severity int

const (
	sevWarning severity = iota
	sevError
)

func (s severity) String() string {
	if s == sevError {
		return "error"
	}
	return "warning"
}

// diag is one message about the configuration, tied to the file and line
// it concerns (Line 0 when it concerns the whole file).
type diag struct {
	File     string
	Line     int
	Severity severity
	Msg      string
}

func (d diag) String() string {
	loc := d.File
	if d.Line > 0 {
		loc = fmt.Sprintf("%s:%d", d.File, d.Line)
	}
	if loc == "" {
		return fmt.Sprintf("%s: %s", d.Severity, d.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, d.Severity, d.Msg)
}

// loadOptions select what loadConfig reads.
type loadOptions struct {
	// ConfigID selects @ID conditional lines (keepalived -i). Empty means
	// the host name up to its first dot, as keepalived does.
	ConfigID string
	// ReadFile replaces os.ReadFile (tests, fuzzing); Glob replaces
	// filepath.Glob for includes.
	ReadFile func(string) ([]byte, error)
	Glob     func(string) ([]string, error)
	// MaxLines bounds the lines the configuration may expand to (after
	// includes, ~SEQ and parameters); 0 means maxConfigLines. keepalived's
	// own man page example generates about 900,000.
	MaxLines int
}

// errConfig is wrapped by the error loadConfig returns when the
// configuration has errors; the diagnostics list them.
var errConfig = errors.New("configuration has errors")

// loadConfig reads the configuration at path and returns its model. It
// returns every diagnostic found; err is non-nil (wrapping errConfig) when
// any of them is an error, and then the model is nil: a configuration is
// applied whole or not at all.
func loadConfig(path string, opt loadOptions) (*Config, []diag, error) {
	if opt.ConfigID == "" {
		h, _ := os.Hostname()
		opt.ConfigID, _, _ = strings.Cut(h, ".")
	}
	if opt.ReadFile == nil {
		opt.ReadFile = os.ReadFile
	}
	if opt.Glob == nil {
		opt.Glob = filepath.Glob
	}
	if opt.MaxLines <= 0 {
		opt.MaxLines = maxConfigLines
	}
	pp := &preproc{opt: opt, defs: map[string]*paramDef{}}
	pp.readFile(path, path, 0, nil)
	root := buildTree(pp.lines, pp)
	l := &loader{diags: pp.diags, cfg: newConfig()}
	if !pp.fatal {
		l.walkTop(root)
		l.finish()
	}
	// Report by file (in the order files were read), then line.
	diags := l.diags
	fileIdx := map[string]int{}
	for _, f := range pp.files {
		if _, ok := fileIdx[f]; !ok {
			fileIdx[f] = len(fileIdx)
		}
	}
	sort.SliceStable(diags, func(i, j int) bool {
		fi, fj := fileIdx[diags[i].File], fileIdx[diags[j].File]
		if fi != fj {
			return fi < fj
		}
		return diags[i].Line < diags[j].Line
	})
	nerr := 0
	for _, d := range diags {
		if d.Severity == sevError {
			nerr++
		}
	}
	if nerr > 0 {
		return nil, diags, fmt.Errorf("%s: %d error(s): %w", path, nerr, errConfig)
	}
	l.cfg.File = path
	return l.cfg, diags, nil
}

// srcLine is one logical configuration line after preprocessing, split
// into words.
type srcLine struct {
	File  string
	Line  int
	Words []word
}

// word is a token; Quoted words are never taken for '{' or '}'.
type word struct {
	S      string
	Quoted bool
}

// paramDef is a $NAME definition: one or more lines (multi-line
// definitions end every line but the last with '\').
type paramDef struct {
	lines []string
}

type preproc struct {
	opt   loadOptions
	defs  map[string]*paramDef
	lines []srcLine
	diags []diag
	bytes int
	fatal bool     // a limit was crossed; stop producing lines
	files []string // in the order read
	// work counts processed (also dropped) lines, so that generators of
	// empty or conditional-out lines cannot spin forever.
	work int
}

func (p *preproc) errorf(file string, line int, format string, a ...any) {
	p.diags = append(p.diags, diag{File: file, Line: line, Severity: sevError, Msg: fmt.Sprintf(format, a...)})
}

func (p *preproc) warnf(file string, line int, format string, a ...any) {
	p.diags = append(p.diags, diag{File: file, Line: line, Severity: sevWarning, Msg: fmt.Sprintf(format, a...)})
}

// readFile reads one file. name is how diagnostics call it (the path as
// given or globbed). optional is the plain include line that named it:
// then a file that cannot be read is a warning there, not an error.
func (p *preproc) readFile(path, name string, depth int, optional *srcLine) {
	if p.fatal {
		return
	}
	p.files = append(p.files, name)
	data, err := p.opt.ReadFile(path)
	if err != nil {
		if optional != nil {
			p.warnf(optional.File, optional.Line, "include: cannot read %s: %v; skipped", name, unwrapPathErr(err))
			return
		}
		p.errorf(name, 0, "cannot read configuration: %v", unwrapPathErr(err))
		return
	}
	if len(data) > maxConfigBytes {
		p.errorf(name, 0, "file is larger than %d bytes", maxConfigBytes)
		return
	}
	text := strings.TrimPrefix(string(data), "\ufeff") // a UTF-8 byte order mark
	raw := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(raw); i++ {
		if p.fatal {
			return
		}
		lineNo := i + 1
		text := raw[i]
		if len(text) > maxLineBytes {
			p.errorf(name, lineNo, "line is longer than %d bytes", maxLineBytes)
			continue
		}
		text = stripComment(text)
		t := strings.TrimSpace(text)
		if t == "" {
			continue
		}
		// A multi-line definition: `$NAME=` ... each line ending in '\'.
		if isDefLine(t) && strings.HasSuffix(t, `\`) {
			parts := []string{strings.TrimSuffix(t, `\`)}
			for strings.HasSuffix(t, `\`) && i+1 < len(raw) {
				i++
				t = strings.TrimSpace(stripComment(raw[i]))
				parts = append(parts, strings.TrimSuffix(t, `\`))
			}
			p.processText(strings.Join(parts, "\n"), name, lineNo, depth, 0)
			continue
		}
		p.processText(t, name, lineNo, depth, 0)
	}
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// isDefLine reports whether t (trimmed) is `$NAME=...`.
func isDefLine(t string) bool {
	if !strings.HasPrefix(t, "$") {
		return false
	}
	name, _, ok := strings.Cut(t[1:], "=")
	return ok && validParamName(name)
}

func validParamName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// processText handles one trimmed, comment-free line (or the joined body
// of a multi-line definition) at expansion depth d.
func (p *preproc) processText(t, file string, line, depth, d int) {
	if p.fatal {
		return
	}
	if d > maxExpandDepth {
		p.errorf(file, line, "parameter expansion nested deeper than %d (recursive definition?)", maxExpandDepth)
		p.fatal = true
		return
	}
	p.work++
	if p.work > 4*p.opt.MaxLines {
		p.errorf(file, line, "configuration expands to more than %d lines", p.opt.MaxLines)
		p.fatal = true
		return
	}
	t = strings.TrimSpace(t)
	if t == "" {
		return
	}
	// Conditional configuration: @ID line, @^ID line.
	if t[0] == '@' {
		id, rest := t[1:], ""
		if i := strings.IndexAny(id, " \t"); i >= 0 {
			id, rest = id[:i], id[i+1:]
		}
		neg := strings.HasPrefix(id, "^")
		id = strings.TrimPrefix(id, "^")
		if (id == p.opt.ConfigID) == neg {
			return
		}
		p.processText(rest, file, line, depth, d)
		return
	}
	// Definitions are stored unexpanded: keepalived substitutes at use.
	if isDefLine(t) {
		name, val, _ := strings.Cut(t[1:], "=")
		def := &paramDef{}
		for _, l := range strings.Split(val, "\n") {
			def.lines = append(def.lines, l)
		}
		if len(def.lines) > 1 && strings.TrimSpace(def.lines[0]) == "" {
			def.lines = def.lines[1:]
		}
		p.defs[name] = def
		return
	}
	// Generators.
	if strings.HasPrefix(t, "~SEQ") || strings.HasPrefix(t, "~LST") {
		p.generate(t, file, line, depth, d)
		return
	}
	// A whole line that is a multi-line parameter: its lines replace it.
	if t[0] == '$' {
		var name string
		if strings.HasPrefix(t, "${") && strings.HasSuffix(t, "}") {
			name = t[2 : len(t)-1]
		} else {
			name = t[1:]
		}
		if def, ok := p.defs[name]; ok && len(def.lines) > 1 {
			for _, l := range def.lines {
				p.processText(l, file, line, depth, d+1)
			}
			return
		}
	}
	if strings.Contains(t, "$") {
		exp, ok := p.expand(t, file, line, 0)
		if !ok {
			return
		}
		if exp != t {
			// The expansion may produce conditionals, several lines, or
			// generators: process it again.
			for _, l := range strings.Split(exp, "\n") {
				p.processText(l, file, line, depth, d+1)
			}
			return
		}
	}
	words, err := splitWords(t)
	if err != nil {
		p.errorf(file, line, "%v", err)
		return
	}
	if len(words) == 0 {
		return
	}
	switch words[0].S {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		if !words[0].Quoted {
			p.include(words, file, line, depth)
			return
		}
	}
	p.bytes += len(t)
	if len(p.lines) >= p.opt.MaxLines || p.bytes > maxConfigBytes {
		p.errorf(file, line, "configuration expands to more than %d lines or %d bytes", p.opt.MaxLines, maxConfigBytes)
		p.fatal = true
		return
	}
	p.lines = append(p.lines, srcLine{File: file, Line: line, Words: words})
}

// include handles `include GLOB` and its checked variants.
func (p *preproc) include(words []word, file string, line, depth int) {
	if len(words) < 2 {
		p.errorf(file, line, "%s needs a file name", words[0].S)
		return
	}
	if depth+1 > maxIncludeDepth {
		p.errorf(file, line, "include nested deeper than %d (include loop?)", maxIncludeDepth)
		return
	}
	for _, w := range words[1:] {
		pat := w.S
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(filepath.Dir(file), pat)
		}
		var matches []string
		var err error
		for _, pp := range expandBraces(pat, 64) {
			var m []string
			if m, err = p.opt.Glob(pp); err != nil {
				break
			}
			matches = append(matches, m...)
		}
		if err != nil {
			p.errorf(file, line, "include %q: %v", w.S, err)
			continue
		}
		if len(matches) == 0 {
			// Plain include tolerates no match (optional conf.d); the
			// checked variants treat it as an error, as keepalived does.
			if words[0].S == "include" || words[0].S == "includer" {
				p.warnf(file, line, "include %q matches no file", w.S)
			} else {
				p.errorf(file, line, "%s %q matches no file", words[0].S, w.S)
			}
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			var from *srcLine
			if words[0].S == "include" {
				// Plain include does not make an unreadable file an
				// error (keepalived.conf(5)); the checked variants do.
				from = &srcLine{File: file, Line: line}
			}
			p.readFile(m, m, depth+1, from)
		}
	}
}

// expandBraces expands csh-style {a,b} alternatives (as glibc's glob
// with GLOB_BRACE, which keepalived uses for include), nested, into at
// most limit patterns.
func expandBraces(s string, limit int) []string {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}
	}
	depth, close := 0, -1
	var commas []int
	for i := open; i < len(s) && close < 0; i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				close = i
			}
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		}
	}
	if close < 0 || len(commas) == 0 {
		// Not an alternative list: keep the brace literally.
		rest := expandBraces(s[open+1:], limit)
		out := make([]string, 0, len(rest))
		for _, r := range rest {
			out = append(out, s[:open+1]+r)
		}
		return out
	}
	var out []string
	start := open + 1
	for _, end := range append(commas, close) {
		for _, e := range expandBraces(s[:open]+s[start:end]+s[close+1:], limit) {
			if len(out) >= limit {
				return out
			}
			out = append(out, e)
		}
		start = end + 1
	}
	return out
}

// expand replaces $NAME (followed by whitespace or end of line) and
// ${NAME} by the definition's value, recursively. Undefined names stay as
// they are, so scripts containing '$' keep working.
func (p *preproc) expand(s, file string, line, d int) (string, bool) {
	if d > maxExpandDepth {
		p.errorf(file, line, "parameter expansion nested deeper than %d (recursive definition?)", maxExpandDepth)
		p.fatal = true
		return "", false
	}
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		var name string
		var end int
		if s[i+1] == '{' {
			j := strings.IndexByte(s[i+2:], '}')
			if j < 0 {
				b.WriteByte(c)
				i++
				continue
			}
			name, end = s[i+2:i+2+j], i+3+j
		} else {
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' {
				b.WriteByte(c)
				i++
				continue
			}
			name, end = s[i+1:j], j
		}
		val, ok := p.lookup(name, file)
		if !ok {
			b.WriteString(s[i:end])
			i = end
			continue
		}
		b.WriteString(val)
		if b.Len() > maxLineBytes*16 {
			p.errorf(file, line, "parameter expansion is longer than %d bytes", maxLineBytes*16)
			p.fatal = true
			return "", false
		}
		changed = true
		i = end
	}
	if !changed {
		return s, true
	}
	return p.expand(b.String(), file, line, d+1)
}

// lookup returns a parameter's value, including keepalived's predefined
// ones (_PWD, _INSTANCE, _RANDOM [MIN [MAX]], _HASH, _BANG).
func (p *preproc) lookup(name, file string) (string, bool) {
	if def, ok := p.defs[name]; ok {
		return strings.Join(def.lines, "\n"), true
	}
	f := strings.Fields(name)
	if len(f) == 0 {
		return "", false
	}
	switch f[0] {
	case "_PWD":
		if len(f) == 1 {
			d, _ := filepath.Abs(filepath.Dir(file))
			return d, true
		}
	case "_INSTANCE":
		if len(f) == 1 {
			return p.opt.ConfigID, true
		}
	case "_HASH":
		if len(f) == 1 {
			return "#", true
		}
	case "_BANG":
		if len(f) == 1 {
			return "!", true
		}
	case "_RANDOM":
		lo, hi := int64(0), int64(32767)
		if len(f) > 1 {
			v, err := strconv.ParseInt(f[1], 10, 32)
			if err != nil || v < 0 {
				return "", false
			}
			lo = v
		}
		if len(f) > 2 {
			v, err := strconv.ParseInt(f[2], 10, 32)
			if err != nil || v < lo {
				return "", false
			}
			hi = v
		}
		return strconv.FormatInt(lo+rand.Int64N(hi-lo+1), 10), true
	}
	return "", false
}

// generate expands ~SEQ(var, [start,] [step,] end), ~SEQx(...) and
// ~LST(var|{v1,v2}, val|{a,b}, ...) at the start of t: the rest of the
// line is processed once per value with the variable(s) defined.
func (p *preproc) generate(t, file string, line, depth, d int) {
	open := strings.IndexByte(t, '(')
	if open < 0 {
		p.errorf(file, line, "%s: missing '('", strings.Fields(t)[0])
		return
	}
	kind := t[1:open]
	// Find the matching ')', allowing {...} groups inside ~LST.
	close := -1
	nest := 0
	for i := open + 1; i < len(t); i++ {
		switch t[i] {
		case '{':
			nest++
		case '}':
			nest--
		case ')':
			if nest == 0 {
				close = i
			}
		}
		if close >= 0 {
			break
		}
	}
	if close < 0 {
		p.errorf(file, line, "~%s: missing ')'", kind)
		return
	}
	inner, rest := t[open+1:close], strings.TrimSpace(t[close+1:])
	var vars []string
	var values [][]string
	switch kind {
	case "SEQ", "SEQx":
		args := strings.Split(inner, ",")
		for i := range args {
			args[i] = strings.TrimSpace(args[i])
		}
		if len(args) < 2 || len(args) > 4 || !validParamName(args[0]) {
			p.errorf(file, line, "~%s(%s): expected (var, [start,] [step,] end)", kind, inner)
			return
		}
		nums := make([]int64, 0, 3)
		for _, a := range args[1:] {
			v, err := strconv.ParseInt(a, 0, 64)
			if err != nil {
				p.errorf(file, line, "~%s: %q is not an integer", kind, a)
				return
			}
			nums = append(nums, v)
		}
		var start, step, end int64
		switch len(nums) {
		case 1:
			end = nums[0]
			start = 1
			if end < 0 {
				start = -1
			}
		case 2:
			start, end = nums[0], nums[1]
		case 3:
			start, step, end = nums[0], nums[1], nums[2]
		}
		if step == 0 {
			step = 1
			if end < start {
				step = -1
			}
		}
		if (step > 0 && end < start) || (step < 0 && end > start) {
			return // an empty sequence, as keepalived
		}
		const lim = 1 << 40 // keeps (end-start)/step from overflowing
		if start < -lim || start > lim || end < -lim || end > lim || step < -lim || step > lim {
			p.errorf(file, line, "~%s(%s): values must be within ±%d", kind, inner, int64(lim))
			return
		}
		n := (end-start)/step + 1
		if n < 0 || n > int64(p.opt.MaxLines) {
			p.errorf(file, line, "~%s generates %d lines; at most %d are allowed", kind, n, p.opt.MaxLines)
			p.fatal = true
			return
		}
		vars = []string{args[0]}
		for v, i := start, int64(0); i < n; v, i = v+step, i+1 {
			s := strconv.FormatInt(v, 10)
			if kind == "SEQx" {
				s = strconv.FormatInt(v, 16)
			}
			values = append(values, []string{s})
		}
	case "LST":
		groups := splitLstArgs(inner)
		if len(groups) < 2 {
			p.errorf(file, line, "~LST(%s): expected (var, value, ...)", inner)
			return
		}
		vars = groups[0]
		for _, v := range vars {
			if !validParamName(v) {
				p.errorf(file, line, "~LST: %q is not a valid variable name", v)
				return
			}
		}
		for _, g := range groups[1:] {
			if len(g) != len(vars) {
				p.errorf(file, line, "~LST: %d values for %d variables", len(g), len(vars))
				return
			}
			values = append(values, g)
		}
	default:
		p.errorf(file, line, "unknown generator ~%s (expected ~SEQ, ~SEQx or ~LST)", kind)
		return
	}
	for _, vs := range values {
		if p.fatal {
			return
		}
		for i, v := range vars {
			p.defs[v] = &paramDef{lines: []string{vs[i]}}
		}
		p.processText(rest, file, line, depth, d+1)
	}
}

// splitLstArgs splits "a, {b,c}, d" into [[a] [b c] [d]].
func splitLstArgs(s string) [][]string {
	var out [][]string
	var cur []string
	var b strings.Builder
	inGroup := false
	flush := func() {
		cur = append(cur, strings.TrimSpace(b.String()))
		b.Reset()
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{' && !inGroup:
			inGroup = true
		case c == '}' && inGroup:
			inGroup = false
		case c == ',' && inGroup:
			flush()
		case c == ',':
			flush()
			out = append(out, cur)
			cur = nil
		default:
			b.WriteByte(c)
		}
	}
	flush()
	out = append(out, cur)
	return out
}

// stripComment removes a '#' or '!' comment that is not inside quotes.
func stripComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && q != 0:
			i++
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '#' || c == '!':
			return s[:i]
		}
	}
	return s
}

// splitWords splits a line into words: whitespace separates, quotes group
// (and are removed; a word may be partly quoted), escapes inside quotes
// follow keepalived's man page, and '{' '}' outside quotes are words of
// their own.
func splitWords(s string) ([]word, error) {
	var out []word
	var b strings.Builder
	inWord, quoted := false, false
	var q byte
	emit := func() {
		if inWord {
			out = append(out, word{S: b.String(), Quoted: quoted})
		}
		b.Reset()
		inWord, quoted = false, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if q != 0 {
			switch {
			case c == q:
				q = 0
			case c == '\\' && i+1 < len(s):
				n, adv := unescape(s[i+1:])
				b.WriteString(n)
				i += adv
			default:
				b.WriteByte(c)
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			emit()
		case '"', '\'':
			q = c
			inWord, quoted = true, true
		case '{', '}':
			emit()
			out = append(out, word{S: string(c)})
		default:
			inWord = true
			b.WriteByte(c)
		}
	}
	if q != 0 {
		return nil, fmt.Errorf("unterminated %c quote", q)
	}
	emit()
	return out, nil
}

// unescape decodes the escape after a backslash in a quoted string and
// returns the bytes and how many input bytes it used.
func unescape(s string) (string, int) {
	switch c := s[0]; c {
	case 'a':
		return "\a", 1
	case 'b':
		return "\b", 1
	case 'E':
		return "\x1b", 1
	case 'f':
		return "\f", 1
	case 'n':
		return "\n", 1
	case 'r':
		return "\r", 1
	case 't':
		return "\t", 1
	case 'v':
		return "\v", 1
	case 'x':
		j := 1
		for j < len(s) && j < 3 && strings.IndexByte("0123456789abcdefABCDEF", s[j]) >= 0 {
			j++
		}
		if j == 1 {
			return "x", 1
		}
		v, _ := strconv.ParseUint(s[1:j], 16, 8)
		return string([]byte{byte(v)}), j
	case 'c':
		if len(s) > 1 {
			return string([]byte{s[1] & 0x1f}), 2
		}
		return "c", 1
	default:
		if c >= '0' && c <= '7' {
			j := 0
			for j < len(s) && j < 3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(s[:j], 8, 16)
			return string([]byte{byte(v)}), j
		}
		return string(c), 1
	}
}

// node is one statement: a keyword with its arguments and, if it opened a
// block, the statements inside.
type node struct {
	Key      string
	Args     []string
	Block    bool
	Children []*node
	File     string
	Line     int
}

func (n *node) pos() Pos { return Pos{File: n.File, Line: n.Line} }

// buildTree turns the lines into a tree. A statement is the words of one
// line up to a brace; '{' opens a block for the statement just before it
// (on the same or an earlier line); '}' closes the innermost block.
func buildTree(lines []srcLine, p *preproc) *node {
	root := &node{Block: true}
	stack := []*node{root}
	var last *node // statement a following '{' would open
	for _, ln := range lines {
		var cur *node
		for _, w := range ln.Words {
			top := stack[len(stack)-1]
			switch {
			case w.S == "{" && !w.Quoted:
				target := cur
				if target == nil {
					target = last
				}
				if target == nil || target.Block {
					p.errorf(ln.File, ln.Line, "'{' without a keyword before it")
					// Open an anonymous block so the braces still balance.
					target = &node{Key: "{", File: ln.File, Line: ln.Line}
					top.Children = append(top.Children, target)
				}
				target.Block = true
				stack = append(stack, target)
				cur, last = nil, nil
			case w.S == "}" && !w.Quoted:
				if len(stack) == 1 {
					p.errorf(ln.File, ln.Line, "'}' without a matching '{'")
				} else {
					stack = stack[:len(stack)-1]
				}
				cur, last = nil, nil
			default:
				if cur == nil {
					cur = &node{Key: w.S, File: ln.File, Line: ln.Line}
					top.Children = append(top.Children, cur)
				} else {
					cur.Args = append(cur.Args, w.S)
				}
			}
		}
		if cur != nil {
			last = cur
		}
	}
	for len(stack) > 1 {
		n := stack[len(stack)-1]
		p.errorf(n.File, n.Line, "block %q opened here is not closed (missing '}')", n.Key)
		stack = stack[:len(stack)-1]
	}
	return root
}
