// Package archtest holds the test that keeps keelson's package boundaries
// (DESIGN.md, STYLE.md rule 1) true without anyone having to remember them.
package archtest
