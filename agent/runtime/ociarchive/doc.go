// Package ociarchive writes OCI image archives (an OCI image layout in a tar
// stream, as `keelson image import` and containerd's importer read them). It
// builds the small busybox image keelson's tests and examples run, from the
// machine's static busybox binary, so nothing has to come from a registry.
package ociarchive
