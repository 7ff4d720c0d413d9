package streaming

import (
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	tk := newTokens()
	now := time.Unix(1000, 0)
	tk.now = func() time.Time { return now }
	if err := tk.add("http://127.0.0.1:1/exec/abc", "req"); err != nil {
		t.Fatal(err)
	}
	if err := tk.add("http://127.0.0.1:1/attach/old", "old"); err != nil {
		t.Fatal(err)
	}
	if err := tk.add("http://127.0.0.1:1/portforward/x", "pf"); err == nil {
		t.Error("a port-forward URL was taken")
	}
	if r, ok := tk.consume("abc"); !ok || r != "req" {
		t.Errorf("consume = %v %v", r, ok)
	}
	if _, ok := tk.consume("abc"); ok {
		t.Error("a token was consumed twice")
	}
	now = now.Add(tokenTTL + time.Second)
	if _, ok := tk.consume("old"); ok {
		t.Error("an expired token was consumed")
	}
	for p, want := range map[string]string{"/exec/a": "a", "//attach/b/": "b", "/portforward/c": "", "/exec/": "", "/exec/a/b": "a/b"} {
		_, token, _ := sessionPath(p)
		if token != want {
			t.Errorf("sessionPath(%q) token %q, want %q", p, token, want)
		}
	}
}
