// Command busybox-image writes the OCI archive of localhost/busybox:latest, built
// from the machine's static busybox (Debian's busybox-static), for `keelson image
// import` on machines that reach no registry. Run by `make images`.
package main
