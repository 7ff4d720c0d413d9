// Package testutil provides offline test fixtures for berth's integration
// tests and benchmarks: deterministic container images built from the host's
// statically linked busybox, hostile layers for unpacker tests, and an
// in-memory OCI distribution registry served over plain HTTP on loopback.
//
// Nothing here touches the network beyond 127.0.0.1. Every image is
// reproducible: the same call returns the same bytes and therefore the same
// digests, so tests may compare digests across calls and processes (on the
// same machine: the busybox layer holds the host's /bin/busybox).
//
// Typical use:
//
//	reg := testutil.NewRegistry(t)
//	img := testutil.BusyboxImage(t, testutil.WithOCI())
//	dgst := reg.Push(t, "busybox:latest", img)
//	// pull reg.Ref("busybox:latest") through berth and compare with dgst.
//
// Tests that need root call RequiresRoot; the Makefile's test-root tier sets
// BERTH_ROOT_TESTS=1.
package testutil
