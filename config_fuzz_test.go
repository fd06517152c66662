package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoadConfig feeds arbitrary text to the whole loader: the main file
// can include itself and "inc.conf" (the same text), so include, ~SEQ and
// $NAME limits are all reachable. No input may panic or hang; a
// configuration that loads must dump to text that loads to the same dump.
// Crashers found are kept in testdata/fuzz/FuzzLoadConfig.
func FuzzLoadConfig(f *testing.F) {
	for _, dir := range []string{"testdata/conf", samplesDir} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.conf*"))
		for _, p := range files {
			if strings.HasSuffix(p, ".golden") {
				continue
			}
			if b, err := os.ReadFile(p); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Add("include inc.conf\n~SEQ(A, 1000) ~SEQ(B, 1000) @x\n$A=${A}${A}\n${A}\n")
	f.Fuzz(func(t *testing.T, text string) {
		files := map[string]string{"keepalived.conf": text, "inc.conf": text}
		opt := memOptions(files, "x")
		opt.MaxLines = 20000
		start := time.Now()
		c, _, err := loadConfig("keepalived.conf", opt)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("load took %v", d)
		}
		if err != nil {
			if c != nil {
				t.Fatal("model returned with errors")
			}
			return
		}
		dump := dumpConfig(c)
		c2, ds, err := loadConfig("dump.conf", memOptions(map[string]string{"dump.conf": dump}, "x"))
		if err != nil {
			t.Fatalf("dump does not load: %v\n%s\n--- dump:\n%s", err, diagText(ds), dump)
		}
		if again := dumpConfig(c2); again != dump {
			t.Fatalf("dump not stable:\n%s", lineDiff(dump, again))
		}
	})
}

// FuzzSplitWords checks the tokenizer alone: no panic, and quoting a
// word with quote() gives it back.
func FuzzSplitWords(f *testing.F) {
	f.Add(`abcd" efg h jkl "mnop {x} "\x41\101\cA" '\''`)
	f.Fuzz(func(t *testing.T, s string) {
		ws, err := splitWords(s)
		if err != nil {
			return
		}
		for _, w := range ws {
			if strings.ContainsAny(w.S, "\x00") {
				continue
			}
			back, err := splitWords(quote(w.S))
			if err != nil || len(back) != 1 || back[0].S != w.S {
				t.Fatalf("quote(%q) = %s does not split back (%v, %v)", w.S, quote(w.S), back, err)
			}
		}
	})
}
