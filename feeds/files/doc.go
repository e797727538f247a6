// Package files is the lake feed on a local directory: the layout,
// encodings and manifests of package lake, in files under a path.
//
// Objects are written the way SPEC §4 asks of every lake: visible whole or
// not at all. An object is written to a temporary file next to its final
// name (<key>.tmp-<random>), synced, and renamed into place on Commit, so a
// reader never opens a half-written part or manifest, and a crash leaves
// at most a temporary file that List does not show.
package files
