// Package examples holds runnable example repositories of manifests; each
// subfolder is one, with a README of a few lines. No Go code lives here.
package examples
