package main

import (
	"os"
	"runtime/debug"
)

// upGCPercent is the garbage collector's target for keelson up: a heap may
// grow by half its live size before a collection, instead of Go's default of
// all of it. keelson up shares one machine with the workloads it runs; its
// live heap is small (about 35 MB with the hello example), so the default
// spends more memory on garbage than on data: 170 MB resident against 135 MB
// with this setting, for a few more collections of a mostly idle process.
const upGCPercent = 50

// lowerGCPercent applies upGCPercent unless GOGC says otherwise.
func lowerGCPercent() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(upGCPercent)
	}
}
