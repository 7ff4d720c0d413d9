package cni

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deleteBridge sets the bridge down and deletes it, as "ip link del" would,
// in the host's network namespace. A bridge that does not exist (no pod
// ever joined the network) is not an error.
func deleteBridge(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil
		}
		return fmt.Errorf("reading flags of bridge %s: %w", name, err)
	}
	if ifr.Uint16()&unix.IFF_UP != 0 {
		ifr.SetUint16(ifr.Uint16() &^ unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("setting bridge %s down: %w", name, err)
		}
	}
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCBRDELBR, uintptr(unsafe.Pointer(p))); errno != 0 && errno != unix.ENXIO && errno != unix.ENODEV {
		return fmt.Errorf("deleting bridge %s: %w", name, errno)
	}
	return nil
}
