package cni

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// SubnetPool is a range that user-defined networks' subnets are cut from,
// in pieces of Size bits (docker's default-address-pools: base and size).
type SubnetPool struct {
	Base netip.Prefix
	Size int
}

// DefaultSubnetPools are docker's default address pools, in order: the
// /16s of 172.16.0.0/12, then /24s of 192.168.0.0/16. Subnets that the
// host routes (docker0's 172.17.0.0/16 where docker runs, a LAN's
// 192.168.1.0/24) are skipped when one is picked.
var DefaultSubnetPools = []SubnetPool{
	{Base: netip.MustParsePrefix("172.16.0.0/12"), Size: 16},
	{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 24},
}

func (p SubnetPool) validate() error {
	if !p.Base.IsValid() || !p.Base.Addr().Is4() || p.Base != p.Base.Masked() || p.Size < p.Base.Bits() || p.Size > 30 {
		return fmt.Errorf("subnet pool %s/%d: an IPv4 base and a size between its bits and 30 are needed: %w", p.Base, p.Size, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (p SubnetPool) String() string { return fmt.Sprintf("%s/%d", p.Base, p.Size) }

// allocateSubnet returns the first piece of the pools that overlaps none
// of used.
func allocateSubnet(pools []SubnetPool, used []netip.Prefix) (netip.Prefix, bool) {
	for _, pool := range pools {
		base := binary.BigEndian.Uint32(pool.Base.Addr().AsSlice())
		step := uint64(1) << (32 - pool.Size)
		count := uint64(1) << (pool.Size - pool.Base.Bits())
	next:
		for i := uint64(0); i < count; i++ {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], base+uint32(i*step))
			cand := netip.PrefixFrom(netip.AddrFrom4(b), pool.Size)
			for _, u := range used {
				if u.Overlaps(cand) {
					continue next
				}
			}
			return cand, true
		}
	}
	return netip.Prefix{}, false
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (uint32(1)<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// hostPrefixes are the IPv4 destinations the host routes (its main table,
// default route left out) and the subnets of its own addresses: what a
// new network's subnet must not shadow.
func hostPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, fmt.Errorf("reading the host's routes: %w", err)
	}
	defer f.Close()
	out = append(out, parseRoutes(bufio.NewScanner(f))...)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("reading the host's addresses: %w", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(ipn.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
				out = append(out, p.Masked())
			}
		}
	}
	return out, nil
}

// parseRoutes reads /proc/net/route: "Iface Destination Gateway Flags
// RefCnt Use Metric Mask …", addresses as little-endian hex.
func parseRoutes(sc *bufio.Scanner) []netip.Prefix {
	var out []netip.Prefix
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] == "Iface" {
			continue
		}
		dst, err1 := hex.DecodeString(f[1])
		mask, err2 := hex.DecodeString(f[7])
		if err1 != nil || err2 != nil || len(dst) != 4 || len(mask) != 4 {
			continue
		}
		bits, _ := net.IPMask{mask[3], mask[2], mask[1], mask[0]}.Size()
		if bits == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{dst[3], dst[2], dst[1], dst[0]}), bits).Masked())
	}
	return out
}
