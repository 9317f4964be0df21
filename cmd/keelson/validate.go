package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

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
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return usageErr("%s: %v", p, errors.Unwrap(err))
		}
		dir, roots := p, []string(nil)
		if !info.IsDir() {
			dir, roots = filepath.Dir(p), []string{filepath.Base(p)}
		}
		objs, err := s.Load(cmd.Context(), os.DirFS(dir), roots, schema.WithMaxFileSize(f.maxFileSize))
		var list schema.ErrorList
		if err != nil && !errors.As(err, &list) {
			return err
		}
		for _, o := range objs {
			report.Objects = append(report.Objects, validObject{File: filepath.Join(dir, o.File), Line: o.Line,
				APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name})
		}
		for _, e := range list {
			e.File = filepath.Join(dir, e.File)
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
