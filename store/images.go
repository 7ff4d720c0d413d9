package store

import (
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Image is a pulled (or later built, loaded) image. Its ID is the digest
// of its config blob, as in docker and containerd.
type Image struct {
	ID digest.Digest `json:"id"`
	// ManifestDigest is the platform manifest the layers came from.
	ManifestDigest digest.Digest `json:"manifestDigest"`
	// ManifestMediaType tells Docker schema 2 from OCI.
	ManifestMediaType string `json:"manifestMediaType"`
	// IndexDigest is set when the name pointed at an index / manifest list.
	IndexDigest digest.Digest `json:"indexDigest,omitempty"`
	// RepoTags are "repo:tag" names, RepoDigests "repo@digest" names; both
	// are also keys of ImageNames pointing here.
	RepoTags    []string `json:"repoTags,omitempty"`
	RepoDigests []string `json:"repoDigests,omitempty"`
	// ChainIDs are the layers' chain IDs, bottom first; the last one is the
	// image's root file system.
	ChainIDs []digest.Digest `json:"chainIDs"`
	// Size is the unpacked size of all layers, in bytes.
	Size int64 `json:"size"`
	// Created is when berth recorded the image.
	Created time.Time `json:"created"`
	// Pinned images are exempt from the kubelet's image GC.
	Pinned bool `json:"pinned,omitempty"`
	// User and Labels are the config's USER and labels, kept here
	// because every image listing reports them.
	User   string            `json:"user,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Snapshot is one unpacked layer: a directory used as an overlayfs lower
// layer. Its key is the chain ID, which names the layer together with all
// layers below it, so images that share a base share its snapshots.
type Snapshot struct {
	ChainID digest.Digest `json:"chainID"`
	// Parent is the chain ID of the layer below ("" for a base layer).
	Parent digest.Digest `json:"parent,omitempty"`
	DiffID digest.Digest `json:"diffID"`
	// Dir is the number of the snapshot's directory under snapshots/;
	// short numbers keep overlay's lowerdir option under a page.
	Dir uint64 `json:"dir"`
	// Size (bytes on disk) and Inodes of the unpacked layer.
	Size    int64     `json:"size"`
	Inodes  int64     `json:"inodes"`
	Created time.Time `json:"created"`
}
