package wire

import (
	"encoding/json"
	"math/rand"
	"testing"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", `q"b\s`, "<a>&", "\x00\x01\b\f\n\r\t\x1f\x7f", "\u2028\u2029", "é日本", "\xff\xfe bad", "a\xc3", "\U0001F600"}
	r := rand.New(rand.NewSource(1))
	alphabet := []byte("ab\"\\<>&\x00\n\x7f\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\xff")
	for i := 0; i < 5000; i++ {
		b := make([]byte, r.Intn(12))
		for j := range b {
			b[j] = alphabet[r.Intn(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
		// And back.
		var back string
		json.Unmarshal(want, &back)
		v := Value{Kind: String, Raw: want}
		if got, ok, err := v.Str(); !ok || err != nil || got != back {
			t.Fatalf("Str(%s) = %q %v %v, want %q", want, got, ok, err, back)
		}
	}
}

func TestUnquoteEscapes(t *testing.T) {
	for _, raw := range []string{`"\u00e9\/\"\\\b\f\n\r\t"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`, `"\ud83d\u0041"`, "\"\xff\"", `"\u003c"`} {
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		got, ok := unquote([]byte(raw))
		if !ok || got != want {
			t.Errorf("unquote(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestParseObjectValidity(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { "a" : 1 , "b":[1,{"c":null},"x"], "d":{"e":true}, "f":-0.5e+3 } `, `{"a":"\u0041"}`, "{\"a\":1}\n",
		`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":01}`, `{"a":1.}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12"}`, `[]`, `{} {}`, `{"a":1} x`,
		"{\"a\":\"\x01\"}", `{"a":[1,]}`, `{"a":-}`, `{"a":1e}`, `"x"`, ``,
	} {
		var m map[string]any
		want := json.Unmarshal([]byte(in), &m) == nil
		got := ParseObject([]byte(in), func(string, Value) error { return nil }) == nil
		if got != want {
			t.Errorf("ParseObject(%q) ok=%v, encoding/json ok=%v", in, got, want)
		}
	}
}

func TestKeyIs(t *testing.T) {
	for _, c := range []struct {
		k, n string
		want bool
	}{{"op", "op", true}, {"OP", "op", true}, {"Op", "op", true}, {"o", "op", false}, {"exitcode", "exitCode", true}, {"op_", "op", false}, {"o@", "o`", false}} {
		if got := KeyIs(c.k, c.n); got != c.want {
			t.Errorf("KeyIs(%q, %q) = %v", c.k, c.n, got)
		}
	}
}
