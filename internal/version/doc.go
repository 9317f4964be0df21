// Package version holds the build's version and commit, set at link time:
//
//	go build -ldflags "-X github.com/keelson/keelson/internal/version.Version=v0.1.0 \
//	  -X github.com/keelson/keelson/internal/version.Commit=$(git rev-parse HEAD)"
package version
