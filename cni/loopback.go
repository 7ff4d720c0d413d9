package cni

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/netns"
)

// LoopbackUp sets lo up in the network namespace at nsPath: all the
// network a pod without one (docker's --network none) has.
func LoopbackUp(nsPath string) error { return loopbackUp(nsPath) }

// loopbackUp sets lo up in the namespace at nsPath, which is all the CNI
// loopback plugin does, without a plugin run per pod. The ioctl acts on the
// namespace the socket was made in.
func loopbackUp(nsPath string) error {
	return netns.Do(nsPath, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("reading lo flags: %w", err)
		}
		if ifr.Uint16()&unix.IFF_UP != 0 {
			return nil
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("setting lo up: %w", err)
		}
		return nil
	})
}
