package logs

import (
	"math/rand"
	"testing"
	"time"
)

func TestAppendTimeMatchesRFC3339Nano(t *testing.T) {
	zones := []*time.Location{
		time.UTC, time.Local,
		time.FixedZone("p", 2*3600), time.FixedZone("m", -(9*3600 + 30*60)),
		time.FixedZone("s", 5*3600+45*60+17), time.FixedZone("ns", -25), time.FixedZone("big", 30*3600),
	}
	if l, err := time.LoadLocation("Europe/Amsterdam"); err == nil {
		zones = append(zones, l)
	}
	times := []time.Time{
		time.Now(), time.Unix(0, 0), time.Unix(0, 1), time.Unix(1, 100), time.Unix(1700000000, 999999999),
		time.Date(-5, 1, 1, 0, 0, 0, 120, time.UTC), time.Date(12345, 12, 31, 23, 59, 59, 5e8, time.UTC),
		time.Date(999, 2, 3, 4, 5, 6, 7, time.UTC), {},
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		times = append(times, time.Unix(r.Int63n(1<<36)-1<<35, r.Int63n(1e9)))
	}
	for _, tm := range times {
		for _, z := range zones {
			x := tm.In(z)
			want := x.AppendFormat(nil, time.RFC3339Nano)
			if got := AppendTime([]byte("pre"), x); string(got) != "pre"+string(want) {
				t.Fatalf("AppendTime(%v) = %q, want %q", x, got, want)
			}
		}
	}
}
