package version

import (
	"fmt"
	"runtime"
	"strings"

	apiversion "k8s.io/apimachinery/pkg/version"
)

// Set at link time; see the package doc.
var (
	Version = "v0.0.0-dev"
	Commit  = "unknown"
)

// String is the one-line form `keelson version` prints.
func String() string {
	return fmt.Sprintf("keelson %s (commit %s, %s, %s/%s)", Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Info is the version in the shape Kubernetes serves at /version, which
// kubectl and client-go read.
func Info() apiversion.Info {
	major, minor := "0", "0"
	if parts := strings.SplitN(strings.TrimPrefix(Version, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	return apiversion.Info{
		Major:      major,
		Minor:      minor,
		GitVersion: Version,
		GitCommit:  Commit,
		GoVersion:  runtime.Version(),
		Compiler:   runtime.Compiler,
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
}
