package gitsync

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/keelson/keelson/gitsync/notification"
)

// ServerConfig is a whole server config file: the sources and who is told
// about their syncs.
type ServerConfig struct {
	Sources       []Config
	Notifications Notifications
}

// LoadServerConfig reads a server config file (see ParseServerConfig).
func LoadServerConfig(path string) (*ServerConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: config file: %v", ErrConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: config file %s: %v", ErrConfig, path, err)
	}
	return ParseServerConfig(path, data)
}

// ParseServerConfig parses a server config file as ParseConfigFile does,
// with its notifications section:
//
//	notifications:
//	  link: https://keelson.example.com/syncs/{source}  # an event's "more", {source} and {revision} filled in
//	  providers:
//	  - name: ci                    # required, unique
//	    type: github                # webhook, slack, github or gitlab
//	    address: https://api.github.com   # webhook or slack URL; API base for github and gitlab
//	    addressFile: F              # the address from a file (a Slack URL is a secret)
//	    tokenFile: F                # github and gitlab: the API token
//	    secretFile: F               # webhook: HMAC-SHA256 key, header X-Keelson-Signature-256
//	    repository: owner/repo      # default: from the source's URL
//	    context: keelson/apps       # commit status context (default keelson/<source>)
//	    sources: [apps]             # only these sources (default all)
//	    severity: error             # info (everything, default) or error (failures only)
//
// Providers are checked as notification.New checks them; a filter naming a
// source the file does not list is an error.
func ParseServerConfig(name string, data []byte) (*ServerConfig, error) {
	p := &fileParser{file: name, dir: filepath.Dir(name), sourceNames: map[string]bool{}, dependsOn: map[string]fieldAt{}}
	out := &ServerConfig{}
	p.parse(data, out)
	p.checkFilters(out)
	if err := p.err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *fileParser) notifications(n *yaml.Node, field string) Notifications {
	var out Notifications
	p.fields(n, field, map[string]func(*yaml.Node, string){
		"link": func(v *yaml.Node, f string) { out.Link = p.str(v, f) },
		"providers": func(v *yaml.Node, f string) {
			v = deref(v)
			if v.Kind != yaml.SequenceNode {
				p.errorf(v, f, "want a list of providers, got %s", describe(v))
				return
			}
			seen := map[string]int{}
			for i, item := range v.Content {
				pf := fmt.Sprintf("%s[%d]", f, i)
				before := len(p.errs)
				pr, sources := p.provider(item, pf)
				if line, dup := seen[pr.Name]; dup && pr.Name != "" {
					p.errorf(item, pf+".name", "%q is the name of the provider at line %d too: names must differ", pr.Name, line)
				} else {
					seen[pr.Name] = item.Line
				}
				if len(p.errs) == before { // a field refused reads as unset: Validate would say it is missing
					if err := pr.Validate(); err != nil {
						p.errorf(item, pf, "%s", strings.TrimPrefix(err.Error(), notification.ErrConfig.Error()+": "))
					}
				}
				out.Providers = append(out.Providers, pr)
				p.providerSources = append(p.providerSources, orNode(sources, item))
			}
		},
	})
	return out
}

// provider reads one provider, and the node of its sources filter (nil
// when unset).
func (p *fileParser) provider(n *yaml.Node, field string) (notification.Provider, *yaml.Node) {
	var pr notification.Provider
	var sources *yaml.Node
	p.fields(n, field, map[string]func(*yaml.Node, string){
		"name": func(v *yaml.Node, f string) { pr.Name = p.str(v, f) },
		"type": func(v *yaml.Node, f string) {
			pr.Type = notification.ProviderType(p.oneOf(v, f, string(notification.Webhook), string(notification.Slack),
				string(notification.GitHub), string(notification.GitLab)))
		},
		"address":     func(v *yaml.Node, f string) { pr.Address = p.str(v, f) },
		"addressFile": func(v *yaml.Node, f string) { pr.AddressFile = p.filePath(v, f) },
		"tokenFile":   func(v *yaml.Node, f string) { pr.TokenFile = p.filePath(v, f) },
		"secretFile":  func(v *yaml.Node, f string) { pr.SecretFile = p.filePath(v, f) },
		"repository":  func(v *yaml.Node, f string) { pr.Repository = p.str(v, f) },
		"context":     func(v *yaml.Node, f string) { pr.Context = p.str(v, f) },
		"sources":     func(v *yaml.Node, f string) { sources, pr.Sources = v, p.strings(v, f) },
		"severity": func(v *yaml.Node, f string) {
			pr.Severity = notification.Severity(p.oneOf(v, f, string(notification.SeverityInfo), string(notification.SeverityError)))
		},
	})
	return pr, sources
}

// checkFilters reports providers' source filters that name no source.
func (p *fileParser) checkFilters(c *ServerConfig) {
	for i, pr := range c.Notifications.Providers {
		for _, s := range pr.Sources {
			if !p.sourceNames[s] {
				p.errorf(p.providerSources[i], fmt.Sprintf("notifications.providers[%d].sources", i), "%q is not the name of a source in this file", s)
			}
		}
	}
}
