// Command report runs keelson's benchmarks several rounds and writes the
// figures — min, median and max over the rounds, with the goal and anchor of
// each — into BENCHMARKS.md, between the markers of its generated section,
// with the machine, and for each section the date and the load average
// before and after it ran. Sections not run this time keep the figures an
// earlier run wrote. `make bench` runs it.
//
//	go run ./bench/report                   # every section, 3 rounds
//	go run ./bench/report -only gitsync,store -rounds 5
//	go run ./bench/report -dry              # print the table, write nothing
package main
