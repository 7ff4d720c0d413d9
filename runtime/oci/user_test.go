package oci

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestResolveUser(t *testing.T) {
	image := fstest.MapFS{
		"etc/passwd": {Data: []byte(`root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
app:x:1000:1000::/home/app:/bin/sh
broken:x:abc:1::/:/bin/sh
`)},
		"etc/group": {Data: []byte(`root:x:0:root
bin:x:1:root,daemon
wheel:x:10:root
www-data:x:33:
app:x:1000:
audio:x:29:app,www-data
video:x:44:app
`)},
	}
	for _, tc := range []struct {
		name    string
		fs      fstest.MapFS
		user    string
		extra   []uint32
		want    User
		wantErr error
	}{
		{name: "empty is root with its groups", fs: image, user: "", want: User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 1, 10}}},
		{name: "root by name", fs: image, user: "root", want: User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 1, 10}}},
		{name: "name", fs: image, user: "app", want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 29, 44}}},
		{name: "uid in passwd", fs: image, user: "33", want: User{UID: 33, GID: 33, AdditionalGids: []uint32{33, 29}}},
		{name: "uid not in passwd", fs: image, user: "4242", want: User{UID: 4242, GID: 0, AdditionalGids: []uint32{0}}},
		{name: "uid:gid", fs: image, user: "1000:3000", want: User{UID: 1000, GID: 3000, AdditionalGids: []uint32{3000, 29, 44}}},
		{name: "name:group", fs: image, user: "app:audio", want: User{UID: 1000, GID: 29, AdditionalGids: []uint32{29, 44}}},
		{name: "uid:group", fs: image, user: "4242:video", want: User{UID: 4242, GID: 44, AdditionalGids: []uint32{44}}},
		{name: "name:gid", fs: image, user: "daemon:5", want: User{UID: 1, GID: 5, AdditionalGids: []uint32{5, 1}}},
		{name: "extra groups appended without duplicates", fs: image, user: "app", extra: []uint32{44, 2000, 2000}, want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 29, 44, 2000}}},
		{name: "no passwd file, numeric", fs: fstest.MapFS{}, user: "1000:1000", want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000}}},
		{name: "no passwd file, root", fs: fstest.MapFS{}, user: "", extra: []uint32{5}, want: User{AdditionalGids: []uint32{0, 5}}},
		{name: "unknown name", fs: image, user: "nobody", wantErr: errdefs.ErrInvalidArgument},
		{name: "unknown name, no passwd", fs: fstest.MapFS{}, user: "app", wantErr: errdefs.ErrInvalidArgument},
		{name: "unknown group", fs: image, user: "app:nogroup", wantErr: errdefs.ErrInvalidArgument},
		{name: "broken passwd entry", fs: image, user: "broken", wantErr: errdefs.ErrInvalidArgument},
		{name: "empty group", fs: image, user: "app:", wantErr: errdefs.ErrInvalidArgument},
		{name: "group without user", fs: image, user: ":app", wantErr: errdefs.ErrInvalidArgument},
		{name: "uid out of range", fs: image, user: "4294967296", wantErr: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveUser(tc.fs, tc.user, tc.extra)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}
