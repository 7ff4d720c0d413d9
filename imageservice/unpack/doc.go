// Package unpack decompresses one OCI/Docker image layer and extracts it into
// a directory in the form overlayfs reads as a lower layer.
//
// Layers are extracted in parallel, each into its own empty directory, so a
// layer never sees its parents: OCI whiteouts are converted into overlayfs's
// own whiteouts instead of being applied
// (https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts):
//
//	dir/.wh.name       → character device 0/0 at dir/name
//	dir/.wh..wh..opq   → xattr trusted.overlay.opaque=y on dir
//	dir/.wh..wh.other  → ignored (AUFS bookkeeping)
//
// Decisions a caller must know:
//
//   - Names are relative to the layer root. Leading slashes are stripped, then
//     the name is cleaned lexically; a name that still starts with ".." (for
//     example "../x", "a/../../x" or "/../x") is refused. Hard link targets
//     are treated the same way.
//   - An entry for the root itself ("./", "/") is ignored: the snapshotter owns
//     the layer directory's metadata. A non-directory entry at the root is
//     refused.
//   - No symlink is ever followed while extracting: a name or hard link target
//     whose parent passes through a symlink is refused. Symlink entries are
//     stored with their target as-is (absolute and "../" targets are normal;
//     they are resolved inside the container later).
//   - Parents the layer does not list are created as 0755 root:root
//     directories. Since a layer does not see its parents, such a directory
//     hides the metadata of the same directory in a lower layer once mounted;
//     image builders list every parent, so this only matters for hand-made
//     tars.
//   - Extended attributes come from PAX SCHILY.xattr.* records.
//     trusted.overlay.* and user.overlay.* (overlayfs's private namespaces,
//     the latter for "userxattr" mounts) are dropped, so an image cannot fake
//     an opaque directory or a redirect. LIBARCHIVE.xattr.* records are
//     ignored.
//   - Block and character device entries are refused, and so are GNU sparse
//     files (old or PAX style): archive/tar expands their holes without
//     reading input, so a tiny layer could claim an exabyte of zeros. The OCI
//     layer spec says sparse files SHOULD NOT be used; Docker and BuildKit
//     never write them.
//   - Whiteout devices are 0:0 with mode 0 and no times from the header. An
//     opaque marker at the top of the layer marks dir itself opaque.
//   - Times: mtime from the header, atime from the PAX atime or else the
//     mtime; directories get theirs after all entries are extracted.
//   - Xattrs on symlinks and fifos are set through /proc/self/fd, so /proc
//     must be mounted.
//   - Stats.Inodes counts creations, not the net number of inodes: an entry
//     replacing an earlier one counts again.
//   - Malformed or hostile input fails with an error wrapping
//     errdefs.ErrInvalidArgument that names the entry. What was extracted
//     before the failure is left in dir for the caller to remove.
package unpack
