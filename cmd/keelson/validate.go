package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/gitsync/render"
	"github.com/keelson/keelson/schema"
)

// exitError carries the exit code of `keelson validate`: 1 when manifests are
// invalid, 2 when the command line is wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

type validateFlags struct {
	output      string
	maxFileSize int64
}

func newValidateCmd() *cobra.Command {
	f := &validateFlags{}
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check manifests against keelson's schemas, offline",
		Long: `validate reads the manifests in each PATH (files, or directories walked
recursively, skipping hidden directories and what .keelsonignore files list)
and checks them as keelson would before storing them: YAML (multi-document),
JSON, kind: List and .cue files; every supported kind; Kubernetes' rules on
names, labels, selectors, ports and resources. It prints every problem as
file:line:col: Kind namespace/name: field: message.

Exit status: 0 all valid, 1 some invalid, 2 usage error.`,
		Example: `  keelson validate deploy/
  keelson validate -o json apps/web.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("validate needs at least one PATH (see keelson validate --help)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd, f, args)
		},
	}
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().Int64Var(&f.maxFileSize, "max-file-size", schema.DefaultMaxFileSize, "largest file to read, in bytes")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: 2, err: err} })
	return cmd
}

// validateReport is the -o json output.
type validateReport struct {
	Valid   bool            `json:"valid"`
	Objects []validObject   `json:"objects"`
	Errors  []*schema.Error `json:"errors"`
}

type validObject struct {
	File       string `json:"file"`
	Line       int    `json:"line,omitempty"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func runValidate(cmd *cobra.Command, f *validateFlags, paths []string) error {
	if f.output != "text" && f.output != "json" {
		return usageErr("--output %q: want text or json", f.output)
	}
	if f.maxFileSize <= 0 {
		return usageErr("--max-file-size must be positive")
	}
	s, err := schema.Default()
	if err != nil {
		return err
	}
	report := validateReport{Objects: []validObject{}, Errors: []*schema.Error{}}
	r := render.New(render.Limits{})
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return usageErr("%s: %v", p, errors.Unwrap(err))
		}
		tree, root, err := treeOf(p)
		if err != nil {
			return err
		}
		// Files encrypted with sops are checked with their values sealed:
		// validation needs no key.
		fsys, list := gitsync.SealEncrypted(os.DirFS(tree), []string{root})
		objs, more, err := gitsync.Load(cmd.Context(), s, r, fsys, []string{root}, schema.WithMaxFileSize(f.maxFileSize))
		if err != nil {
			return err
		}
		list = append(list, more...)
		for _, o := range objs {
			report.Objects = append(report.Objects, validObject{File: shownPath(tree, o.File), Line: o.Line,
				APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name})
		}
		for _, e := range list {
			e.File = shownPath(tree, e.File)
			report.Errors = append(report.Errors, e)
		}
	}
	report.Valid = len(report.Errors) == 0
	if err := writeReport(cmd.OutOrStdout(), f.output, &report); err != nil {
		return err
	}
	if !report.Valid {
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) found", len(report.Errors))}
	}
	return nil
}

func writeReport(w io.Writer, format string, r *validateReport) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	for _, e := range r.Errors {
		if _, err := fmt.Fprintln(w, e.Error()); err != nil {
			return err
		}
	}
	files := map[string]bool{}
	for _, o := range r.Objects {
		files[o.File] = true
	}
	_, err := fmt.Fprintf(w, "%d valid object(s) in %d file(s), %d problem(s)\n", len(r.Objects), len(files), len(r.Errors))
	return err
}

// treeOf returns the tree p is read in, and p's path inside it: the Git
// repository holding p, so that a kustomization under it may read bases
// beside it as the sync would, or else p's own folder.
func treeOf(p string) (tree, root string, err error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", "", err
	}
	dir := abs
	if !info.IsDir() {
		dir = filepath.Dir(abs)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			rel, err := filepath.Rel(d, abs)
			return d, filepath.ToSlash(rel), err
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	rel, err := filepath.Rel(dir, abs)
	return dir, filepath.ToSlash(rel), err
}

// shownPath is a file of tree as the person running the command names it:
// relative to the working folder when it is under it.
func shownPath(tree, file string) string {
	full := filepath.Join(tree, filepath.FromSlash(file))
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, full); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return full
}
