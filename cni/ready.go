// Package cni attaches pod network namespaces to networks through libcni.
//
// Manager knows two kinds of network: the pod network, the first config in
// an operator's CNI directory (EnsureDefaultConfig writes one when there is
// none), which every CRI pod joins; and user-defined networks, docker's
// "network create", which the Manager renders as bridge conflists in a
// directory of its own. A pod may be on several networks at once, each
// through its own interface, and joins or leaves one without disturbing
// the others (Setup, Detach); Teardown leaves them all. What each
// attachment used is in libcni's cache, so DEL works after a restart.
// DefaultNetwork answers whether the pod network is usable, for the CRI's
// NetworkReady condition.
package cni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/containernetworking/cni/libcni"
)

// Extensions of network configuration files, as libcni reads them.
var Extensions = []string{".conflist", ".conf", ".json"}

// DefaultNetwork loads the pod network: the first valid configuration in
// confDir by file name. It fails with a reason a user can act on when the
// directory is missing, empty or holds no valid configuration, or when a
// plugin binary the network needs is in none of binDirs.
func DefaultNetwork(confDir string, binDirs []string) (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(confDir, Extensions)
	if err != nil {
		return nil, fmt.Errorf("reading CNI config directory %s: %w", confDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no network config in %s", confDir)
	}
	sort.Strings(files)
	var errs []error
	for _, f := range files {
		list, err := libcni.NetworkConfFromFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		for _, p := range list.Plugins {
			if !findPlugin(p.Network.Type, binDirs) {
				return nil, fmt.Errorf("network %q (%s) needs CNI plugin %q, found in none of %v", list.Name, f, p.Network.Type, binDirs)
			}
		}
		return list, nil
	}
	return nil, fmt.Errorf("no valid network config in %s: %w", confDir, errors.Join(errs...))
}

func findPlugin(name string, dirs []string) bool {
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}
