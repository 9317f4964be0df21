package gitsync

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The head of a server config file.
const (
	ConfigAPIVersion = "keelson.dev/v1alpha1"
	ConfigKind       = "ServerConfig"
)

// DefaultResync is how often a source of a config file re-applies an
// unchanged revision when it names no resync, as `keelson server --resync`.
const DefaultResync = 10 * time.Minute

// maxConfigFileSize bounds a config file: a thousand sources fit many times.
const maxConfigFileSize = 1 << 20

// ConfigFileError is one problem of a config file, where it is.
type ConfigFileError struct {
	// File is the config file's path; Line and Column are 1-based, 0 when
	// unknown.
	File         string
	Line, Column int
	// Field is the path of the field, "sources[1].interval"; empty for the
	// file as a whole.
	Field string
	Msg   string
}

// Error returns "file:line:col: field: message".
func (e *ConfigFileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes every config file error an ErrConfig.
func (e *ConfigFileError) Is(target error) bool { return target == ErrConfig }

// LoadConfigFile reads a server config file (see ParseConfigFile).
func LoadConfigFile(path string) ([]Config, error) {
	c, err := LoadServerConfig(path)
	if err != nil {
		return nil, err
	}
	return c.Sources, nil
}

// ParseConfigFile parses a server config file: the sources keelson syncs,
// one Config each, in the file's order.
//
//	apiVersion: keelson.dev/v1alpha1
//	kind: ServerConfig
//	sources:
//	- name: apps                  # required: label keelson.dev/source, /hooks/apps
//	  url: ../deploy              # required: a repository path or URL
//	  ref: main                   # or {branch: main}, {tag: v1}, {commit: <hash>}
//	  path: clusters/prod
//	  interval: 1m                # poll period (30s)
//	  resync: 10m                 # re-apply an unchanged revision (10m; 0s: never)
//	  targetNamespace: default
//	  prune: true                 # (true)
//	  allowEmpty: false
//	  requireEncryptedSecrets: false # refuse a Secret not encrypted with sops
//	  suspend: false
//	  auth: {tokenFile: F, basicAuthFile: F, sshKeyFile: F, knownHostsFile: F}
//	  verify: {openpgpKeys: F}
//	  webhook: {secretFile: F}
//	  dependsOn: [infra]          # apply only when these sources are Ready and Healthy
//	  wait: false                 # succeed only when every object is Healthy
//	  timeout: 5m                 # bound of each wave's, hook's and wait's check
//	  onFailure: rollback         # (needs wait) go back to the last Healthy revision
//	notifications:                # see ParseServerConfig
//
// name is the file's path: errors start with it, and relative paths in the
// file (local repositories, auth, keys and secrets) are taken from its
// folder. Unknown fields, fields set twice and sources sharing a name are
// errors. Every problem comes back, each a *ConfigFileError ("file:line:col:
// field: message"), joined; they all match ErrConfig.
func ParseConfigFile(name string, data []byte) ([]Config, error) {
	c, err := ParseServerConfig(name, data)
	if err != nil {
		return nil, err
	}
	return c.Sources, nil
}

// parse reads the file's one document into out.
func (p *fileParser) parse(data []byte, out *ServerConfig) {
	if len(data) > maxConfigFileSize {
		p.errorf(nil, "", "file is over %d bytes: is it the right file?", maxConfigFileSize)
		return
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(nil, "", "file is empty: want apiVersion %s, kind %s and sources", ConfigAPIVersion, ConfigKind)
		} else {
			p.syntax(err)
		}
		return
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.errorf(&next, "", "a second document: the file holds one %s", ConfigKind)
	} else if !errors.Is(err, io.EOF) {
		p.syntax(err)
	}
	p.top(&doc, out)
}

type fileParser struct {
	file, dir string
	errs      []error
	// providerSources are the nodes of the notification providers'
	// sources filters (or of the providers), in order.
	providerSources []*yaml.Node
	// sourceNames are the names of the file's sources, those with errors
	// too, so that a reference to one is not reported as unknown.
	sourceNames map[string]bool
	// dependsOn is where each source's dependsOn is, by name.
	dependsOn map[string]fieldAt
}

// fieldAt is a field's node and path.
type fieldAt struct {
	node  *yaml.Node
	field string
}

func (p *fileParser) errorf(n *yaml.Node, field, format string, args ...any) {
	e := &ConfigFileError{File: p.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

func (p *fileParser) err() error { return errors.Join(p.errs...) }

// syntax turns the YAML library's "yaml: line N: message" into file:line.
func (p *fileParser) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &ConfigFileError{File: p.file, Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, m, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				e.Line, e.Msg = line, m
			}
		}
	}
	p.errs = append(p.errs, e)
}

// top reads the document's top level.
func (p *fileParser) top(doc *yaml.Node, out *ServerConfig) {
	top := doc
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	var apiVersion, kind string
	var apiVersionNode, kindNode, sourcesNode *yaml.Node
	p.fields(top, "", map[string]func(*yaml.Node, string){
		"apiVersion":    func(n *yaml.Node, f string) { apiVersionNode, apiVersion = n, p.str(n, f) },
		"kind":          func(n *yaml.Node, f string) { kindNode, kind = n, p.str(n, f) },
		"sources":       func(n *yaml.Node, f string) { sourcesNode = n; out.Sources = p.sources(n, f) },
		"notifications": func(n *yaml.Node, f string) { out.Notifications = p.notifications(n, f) },
	})
	if top.Kind != yaml.MappingNode {
		return
	}
	switch {
	case apiVersion == "" && kind == "":
		p.errorf(top, "", "apiVersion and kind missing: want apiVersion: %s and kind: %s", ConfigAPIVersion, ConfigKind)
	case apiVersion != ConfigAPIVersion:
		p.errorf(orNode(apiVersionNode, top), "apiVersion", "%q: want %s", apiVersion, ConfigAPIVersion)
	case kind != ConfigKind:
		p.errorf(orNode(kindNode, top), "kind", "%q: want %s", kind, ConfigKind)
	}
	if sourcesNode == nil {
		p.errorf(top, "sources", "missing: list the repositories to sync")
	} else if n := deref(sourcesNode); n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		p.errorf(sourcesNode, "sources", "empty: list the repositories to sync")
	}
}

func (p *fileParser) sources(n *yaml.Node, field string) []Config {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "want a list of sources, got %s", describe(n))
		return nil
	}
	var out []Config
	firstLine := map[string]int{}
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		cfg, ok := p.source(deref(item), f)
		if !ok {
			continue
		}
		if line, dup := firstLine[cfg.Name]; dup {
			p.errorf(item, f+".name", "%q is the name of the source at line %d too: names must differ", cfg.Name, line)
			continue
		}
		firstLine[cfg.Name] = item.Line
		out = append(out, cfg)
	}
	p.dependencies(n, out)
	return out
}

// dependencies reports the dependsOn entries that name no source, and
// cycles among the sources read, at the dependsOn field of the source at
// fault.
func (p *fileParser) dependencies(n *yaml.Node, srcs []Config) {
	at := func(name string) (*yaml.Node, string) {
		if d, ok := p.dependsOn[name]; ok {
			return d.node, d.field
		}
		return n, "sources"
	}
	deps := map[string][]string{}
	for _, c := range srcs {
		deps[c.Name] = c.DependsOn
	}
	for _, c := range srcs {
		for _, d := range c.DependsOn {
			if !p.sourceNames[d] {
				node, f := at(c.Name)
				p.errorf(node, f, "%q is not the name of a source in this file", d)
			}
		}
	}
	if cycle := findCycle(deps); cycle != nil {
		node, f := at(cycle[0])
		p.errorf(node, f, "sources depend on each other in a cycle: %s", strings.Join(cycle, " → "))
	}
}

// source reads one source; ok is false when it is unusable (the errors say
// why).
func (p *fileParser) source(n *yaml.Node, field string) (cfg Config, ok bool) {
	before := len(p.errs)
	cfg = Config{Prune: true, Resync: DefaultResync}
	var nameNode, urlNode, onFailureNode, dependsOnNode *yaml.Node
	p.fields(n, field, map[string]func(*yaml.Node, string){
		"name":            func(v *yaml.Node, f string) { nameNode, cfg.Name = v, p.str(v, f) },
		"url":             func(v *yaml.Node, f string) { urlNode, cfg.Repo = v, p.str(v, f) },
		"ref":             func(v *yaml.Node, f string) { cfg.Ref = p.ref(v, f) },
		"path":            func(v *yaml.Node, f string) { cfg.Path = p.str(v, f) },
		"interval":        func(v *yaml.Node, f string) { cfg.Interval = p.duration(v, f) },
		"resync":          func(v *yaml.Node, f string) { cfg.Resync = p.duration(v, f) },
		"targetNamespace": func(v *yaml.Node, f string) { cfg.TargetNamespace = p.namespace(v, f) },
		"prune":           func(v *yaml.Node, f string) { cfg.Prune = p.boolean(v, f) },
		"allowEmpty":      func(v *yaml.Node, f string) { cfg.AllowEmpty = p.boolean(v, f) },
		"requireEncryptedSecrets": func(v *yaml.Node, f string) {
			cfg.RequireEncryptedSecrets = p.boolean(v, f)
		},
		"suspend":   func(v *yaml.Node, f string) { cfg.Suspend = p.boolean(v, f) },
		"dependsOn": func(v *yaml.Node, f string) { dependsOnNode, cfg.DependsOn = v, p.strings(v, f) },
		"wait":      func(v *yaml.Node, f string) { cfg.Wait = p.boolean(v, f) },
		"timeout":   func(v *yaml.Node, f string) { cfg.Timeout = p.duration(v, f) },
		"onFailure": func(v *yaml.Node, f string) {
			onFailureNode = v
			cfg.Rollback = p.oneOf(v, f, OnFailureRollback, "none") == OnFailureRollback
		},
		"auth": func(v *yaml.Node, f string) { cfg.Auth = p.auth(v, f) },
		"verify": func(v *yaml.Node, f string) {
			p.fields(v, f, map[string]func(*yaml.Node, string){
				"openpgpKeys": func(v *yaml.Node, f string) { cfg.VerifyKeysFile = p.filePath(v, f) },
			})
		},
		"webhook": func(v *yaml.Node, f string) {
			p.fields(v, f, map[string]func(*yaml.Node, string){
				"secretFile": func(v *yaml.Node, f string) { cfg.WebhookSecretFile = p.filePath(v, f) },
			})
		},
	})
	if n.Kind != yaml.MappingNode {
		return cfg, false
	}
	switch {
	case cfg.Name == "":
		p.required(nameNode, n, field+".name", "the source's name labels its objects (keelson.dev/source) and names its webhook (/hooks/<name>)")
	default:
		errs := validation.IsValidLabelValue(cfg.Name)
		if strings.Contains(cfg.Name, ".") {
			errs = append(errs, "no dots")
		}
		if len(errs) > 0 {
			p.errorf(nameNode, field+".name", "%q: must be a label value without dots: %s", cfg.Name, strings.Join(errs, "; "))
		}
	}
	if cfg.Name != "" {
		p.sourceNames[cfg.Name] = true
		if dependsOnNode != nil {
			p.dependsOn[cfg.Name] = fieldAt{dependsOnNode, field + ".dependsOn"}
		}
	}
	if cfg.Rollback && !cfg.Wait {
		p.errorf(onFailureNode, field+".onFailure", "rollback needs wait: true: the revision to go back to is the last one seen Healthy")
	}
	if cfg.Repo == "" {
		p.required(urlNode, n, field+".url", "the repository to sync (a path, or a URL)")
	} else if !isRemoteURL(cfg.Repo) {
		cfg.Repo = p.abs(cfg.Repo)
	}
	return cfg, len(p.errs) == before
}

// required reports a required field that is missing (n is nil) or an empty
// string; other values were reported when read.
func (p *fileParser) required(n, parent *yaml.Node, field, what string) {
	switch {
	case n == nil:
		p.errorf(parent, field, "required: %s", what)
	case deref(n).Kind == yaml.ScalarNode && deref(n).Tag != "!!null":
		p.errorf(n, field, "empty: %s", what)
	}
}

func (p *fileParser) auth(n *yaml.Node, field string) Auth {
	var a Auth
	p.fields(n, field, map[string]func(*yaml.Node, string){
		"tokenFile":      func(v *yaml.Node, f string) { a.TokenFile = p.filePath(v, f) },
		"basicAuthFile":  func(v *yaml.Node, f string) { a.BasicAuthFile = p.filePath(v, f) },
		"sshKeyFile":     func(v *yaml.Node, f string) { a.SSHKeyFile = p.filePath(v, f) },
		"knownHostsFile": func(v *yaml.Node, f string) { a.KnownHostsFile = p.filePath(v, f) },
	})
	if a.TokenFile != "" && a.BasicAuthFile != "" {
		p.errorf(n, field, "tokenFile and basicAuthFile both set: give one")
	}
	return a
}

// ref takes a string ("main", "v1.2", a hash) or Flux's form, a mapping with
// one of branch, tag or commit.
func (p *fileParser) ref(n *yaml.Node, field string) string {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return p.str(n, field)
	}
	var refs []string
	p.fields(n, field, map[string]func(*yaml.Node, string){
		"branch": func(v *yaml.Node, f string) { refs = append(refs, "refs/heads/"+p.str(v, f)) },
		"tag":    func(v *yaml.Node, f string) { refs = append(refs, "refs/tags/"+p.str(v, f)) },
		"commit": func(v *yaml.Node, f string) { refs = append(refs, p.str(v, f)) },
	})
	if len(refs) != 1 {
		p.errorf(n, field, "give one of branch, tag or commit")
		return ""
	}
	return refs[0]
}
