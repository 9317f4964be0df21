package pod

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/internal/servicenet"
)

// serviceEnv is the environment Kubernetes gives a container about the
// services that exist when it starts: for each service of the pod's
// namespace with a cluster IP (unless spec.enableServiceLinks is false), and
// always for the kubernetes service of the default namespace,
// {NAME}_SERVICE_HOST, {NAME}_SERVICE_PORT, {NAME}_SERVICE_PORT_{PORT NAME},
// and the Docker link variables {NAME}_PORT, {NAME}_PORT_{port}_{PROTO} and
// its _PROTO, _PORT and _ADDR. A service of the pod's namespace wins over the
// default namespace's of the same name.
func (r *Runner) serviceEnv(ctx context.Context, p *corev1.Pod) (map[string]string, error) {
	links := p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks
	byName := map[string]*corev1.Service{}
	if p.Namespace != servicenet.APIServiceNamespace || !links {
		svcs, err := r.cfg.Lookup.Services(ctx, servicenet.APIServiceNamespace)
		if err != nil {
			return nil, fmt.Errorf("services for the environment: %w", err)
		}
		for _, s := range svcs {
			if s.Name == servicenet.APIServiceName {
				byName[s.Name] = s
			}
		}
	}
	if links {
		svcs, err := r.cfg.Lookup.Services(ctx, p.Namespace)
		if err != nil {
			return nil, fmt.Errorf("services for the environment: %w", err)
		}
		for _, s := range svcs {
			byName[s.Name] = s
		}
	}
	env := map[string]string{}
	for _, s := range byName {
		addServiceEnv(env, s)
	}
	return env, nil
}

func addServiceEnv(env map[string]string, s *corev1.Service) {
	ip := s.Spec.ClusterIP
	if ip == "" || ip == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
		return
	}
	prefix := envName(s.Name)
	env[prefix+"_SERVICE_HOST"] = ip
	env[prefix+"_SERVICE_PORT"] = strconv.Itoa(int(s.Spec.Ports[0].Port))
	for i, sp := range s.Spec.Ports {
		port := strconv.Itoa(int(sp.Port))
		if sp.Name != "" {
			env[prefix+"_SERVICE_PORT_"+envName(sp.Name)] = port
		}
		proto := strings.ToLower(string(sp.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		url := proto + "://" + ip + ":" + port
		if i == 0 {
			env[prefix+"_PORT"] = url
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		env[pp] = url
		env[pp+"_PROTO"] = proto
		env[pp+"_PORT"] = port
		env[pp+"_ADDR"] = ip
	}
}

// envName makes a service or port name a variable name: upper case, dashes
// as underscores.
func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// sortedKeys returns m's keys in order, so the environment is the same at
// every start.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
