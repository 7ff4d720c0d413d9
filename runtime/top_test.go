package runtime

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestParsePS(t *testing.T) {
	for _, tc := range []struct {
		name   string
		output string
		pids   []int
		want   TopResult
	}{
		{
			name: "ef",
			output: "UID          PID    PPID  C STIME TTY          TIME CMD\n" +
				"root           1       0  0 07:00 ?        00:00:01 /sbin/init\n" +
				"root         100       1  0 07:01 ?        00:00:00 sleep 1000\n" +
				"nobody       101     100  0 07:01 pts/0    00:00:00 sh -c echo a  b\n",
			pids: []int{100, 101},
			want: TopResult{
				Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
				Processes: [][]string{
					{"root", "100", "1", "0", "07:01", "?", "00:00:00", "sleep 1000"},
					{"nobody", "101", "100", "0", "07:01", "pts/0", "00:00:00", "sh -c echo a b"},
				},
			},
		},
		{
			name:   "threads follow their process",
			output: "USER PID TID CMD\nroot 5 - app\nroot - 5 -\nroot - 6 -\nroot 7 - other\nroot - 7 -\n",
			pids:   []int{5},
			want: TopResult{
				Titles:    []string{"USER", "PID", "TID", "CMD"},
				Processes: [][]string{{"root", "5", "-", "app"}, {"root", "-", "5", "-"}, {"root", "-", "6", "-"}},
			},
		},
		{
			name:   "none of them",
			output: "PID CMD\n1 init\n",
			pids:   []int{2},
			want:   TopResult{Titles: []string{"PID", "CMD"}, Processes: [][]string{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePS([]byte(tc.output), tc.pids)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ParsePS([]byte("USER CMD\nroot x\n"), nil); err == nil {
		t.Error("ps output without a PID column: no error")
	}
}

func TestValidatePSArgs(t *testing.T) {
	for args, ok := range map[string]bool{
		"-ef": true, "aux": true, "-o pid=PID,comm": true, "-o pid,comm": true,
		"-o user=PID": false, "-eo user=PIDX,pid": false,
	} {
		err := validatePSArgs(args)
		if ok != (err == nil) || err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("validatePSArgs(%q) = %v", args, err)
		}
	}
}
