package logs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

const ts = "2024-05-06T07:08:09.123456789Z"

func openTest(t *testing.T, max int) (*Writer, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(p, WithMaxLineSize(max), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	return w, p
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriterByteExact(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string // alternating is not needed: all on stdout
		want   []string // records after the timestamp and stream
	}{
		{"one line", 16, []string{"hello\n"}, []string{"F hello"}},
		{"two lines one write", 16, []string{"a\nb\n"}, []string{"F a", "F b"}},
		{"empty line", 16, []string{"\n"}, []string{"F "}},
		{"split write", 16, []string{"he", "llo", "\n"}, []string{"F hello"}},
		{"unterminated flushed as F on close", 16, []string{"abc"}, []string{"F abc"}},
		{"exactly max", 4, []string{"abcd\n"}, []string{"F abcd"}},
		{"max plus one", 4, []string{"abcde\n"}, []string{"P abcd", "F e"}},
		{"two times max", 4, []string{"abcdefgh\n"}, []string{"P abcd", "F efgh"}},
		{"long across writes", 4, []string{"ab", "cdef", "ghij", "\n"}, []string{"P abcd", "P efgh", "F ij"}},
		{"long unterminated", 4, []string{"abcdefghij"}, []string{"P abcd", "P efgh", "F ij"}},
		{"held then long line", 4, []string{"ab", "cdefgh\nx\n"}, []string{"P abcd", "F efgh", "F x"}},
		{"carriage return kept", 16, []string{"a\r\n"}, []string{"F a\r"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, p := openTest(t, tc.max)
			s := w.Stream(Stdout)
			for _, x := range tc.writes {
				if n, err := s.Write([]byte(x)); err != nil || n != len(x) {
					t.Fatalf("Write(%q) = %d, %v", x, n, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for _, r := range tc.want {
				want.WriteString(ts + " stdout " + r + "\n")
			}
			if diff := cmp.Diff(want.String(), read(t, p)); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStreamsTagged(t *testing.T) {
	w, p := openTest(t, 0)
	o, e := w.Stream(Stdout), w.Stream(Stderr)
	o.Write([]byte("out"))
	e.Write([]byte("err\n"))
	o.Write([]byte("put\n"))
	o.Close()
	e.Close()
	w.Close()
	want := ts + " stderr F err\n" + ts + " stdout F output\n"
	if got := read(t, p); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDiscard(t *testing.T) {
	w, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stream(Stdout)
	if _, err := s.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
}

// numbered is line i of stream in the concurrency tests, without its "\n".
func numbered(stream string, i int) string {
	return fmt.Sprintf("%s-%05d-%s", stream, i, strings.Repeat("x", i%150))
}

// TestInterleavingNeverTears writes n numbered lines from each stream
// concurrently and checks that every record parses and every line arrives
// once, whole.
func TestInterleavingNeverTears(t *testing.T) {
	w, p := openTest(t, 64)
	const n = 2000
	var wg sync.WaitGroup
	for _, name := range []string{Stdout, Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := w.Stream(name)
			for i := range n {
				// Odd-sized writes that cut lines at random places.
				line := numbered(name, i) + "\n"
				half := len(line) / 3
				s.Write([]byte(line[:half]))
				s.Write([]byte(line[half:]))
			}
			s.Close()
		}()
	}
	wg.Wait()
	w.Close()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checkLines(t, []io.Reader{f}, n)
}

func checkLines(t *testing.T, files []io.Reader, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, f := range files {
		r := NewReader(f, 0)
		for {
			l, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var name string
			var i int
			if _, err := fmt.Sscanf(string(l.Content[:12]), "%6s-%05d", &name, &i); err != nil {
				t.Fatalf("line %q: %v", l.Content, err)
			}
			want := numbered(l.Stream, i)
			if string(l.Content) != want {
				t.Fatalf("line torn: got %q want %q", l.Content, want)
			}
			seen[want]++
		}
	}
	if len(seen) != 2*n {
		t.Fatalf("got %d distinct lines, want %d", len(seen), 2*n)
	}
	for l, c := range seen {
		if c != 1 {
			t.Fatalf("line %q seen %d times", l, c)
		}
	}
}

func TestReopenUnderConcurrentWrites(t *testing.T) {
	w, p := openTest(t, 1<<10)
	const n = 3000
	var wg sync.WaitGroup
	for _, name := range []string{Stdout, Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := w.Stream(name)
			for i := range n {
				s.Write([]byte(numbered(name, i) + "\n"))
			}
			s.Close()
		}()
	}
	var rotated []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			old := fmt.Sprintf("%s.%d", p, i)
			if err := os.Rename(p, old); err != nil {
				t.Error(err)
				return
			}
			rotated = append(rotated, old)
			if err := w.Reopen(); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	<-done
	w.Close()
	var rs []io.Reader
	for _, f := range append(rotated, p) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%s ends in the middle of a record", f)
		}
		rs = append(rs, bytes.NewReader(b))
	}
	checkLines(t, rs, n)
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Entry
		wantErr bool
	}{
		{in: ts + " stdout F hello\n", want: Entry{Time: t0, Stream: Stdout, Content: []byte("hello")}},
		{in: ts + " stderr P a b ", want: Entry{Time: t0, Stream: Stderr, Partial: true, Content: []byte("a b ")}},
		{in: ts + " stdout F", want: Entry{Time: t0, Stream: Stdout, Content: []byte{}}},
		{in: ts + " stdout F ", want: Entry{Time: t0, Stream: Stdout, Content: []byte{}}},
		{in: "2024-05-06T09:08:09.1+02:00 stdout F x", want: Entry{Time: time.Date(2024, 5, 6, 7, 8, 9, 1e8, time.UTC), Stream: Stdout, Content: []byte("x")}},
		{in: "", wantErr: true},
		{in: "garbage stdout F x", wantErr: true},
		{in: ts + " stdin F x", wantErr: true},
		{in: ts + " stdout X x", wantErr: true},
		{in: ts + " stdout Fx", wantErr: true},
		{in: ts + " stdout", wantErr: true},
	}
	for _, tc := range tests {
		got, err := Parse([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("Parse(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestReaderReassembles(t *testing.T) {
	in := ts + " stdout P ab\n" + ts + " stderr F e\n" + ts + " stdout P cd\n" + ts + " stdout F ef\n" + ts + " stderr P tail\n"
	r := NewReader(bufio.NewReader(strings.NewReader(in)), 0)
	var got []string
	for {
		l, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l.Stream+":"+string(l.Content))
	}
	want := []string{"stderr:e", "stdout:abcdef", "stderr:tail"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(ts + " stdout F hello\n"))
	f.Add([]byte(ts + " stderr P \n"))
	f.Add([]byte("x y z"))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Parse(line)
		if err != nil {
			return
		}
		// A parsed record written back by the writer parses to the same.
		var buf bytes.Buffer
		tag := "F"
		if e.Partial {
			tag = "P"
		}
		buf.WriteString(e.Time.Format(time.RFC3339Nano) + " " + e.Stream + " " + tag + " ")
		buf.Write(e.Content)
		e2, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", buf.Bytes(), err)
		}
		if !e2.Time.Equal(e.Time) || e2.Stream != e.Stream || e2.Partial != e.Partial || !bytes.Equal(e2.Content, e.Content) {
			t.Fatalf("round trip changed %+v to %+v", e, e2)
		}
	})
}
