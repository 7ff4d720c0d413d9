package rootfs

// Host makes the mounts on this host: its methods are the package's
// functions, for a consumer that takes its mounts through an interface
// (runtime.Mounter) so that a fake can stand in for it in unit tests.
type Host struct{}

// Mount is the package's Mount.
func (Host) Mount(target string, lowers []string, upper, work string, idmap *IDMap) error {
	return Mount(target, lowers, upper, work, idmap)
}

// MountReadOnly is the package's MountReadOnly.
func (Host) MountReadOnly(target string, lowers []string, idmap *IDMap) error {
	return MountReadOnly(target, lowers, idmap)
}

// BindBeneath is the package's BindBeneath.
func (Host) BindBeneath(root, sub, target string, ro bool) error {
	return BindBeneath(root, sub, target, ro)
}

// Stage is the package's Stage.
func (Host) Stage(src, target string, o StageOptions) error { return Stage(src, target, o) }

// Unmount is the package's Unmount.
func (Host) Unmount(target string) error { return Unmount(target) }

// UnmountAll is the package's UnmountAll.
func (Host) UnmountAll(dir string) error { return UnmountAll(dir) }
