package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// corpusDir holds real manifests from public projects, shared by the team and
// never copied into this repository.
func corpusDir() string {
	if d := os.Getenv("KEELSON_CORPUS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "corpus")
}

// corpusInvalid lists the corpus files that are rejected although their kind
// is supported, each with the reason they are really invalid: Kubernetes
// rejects them too (strict field validation, as kubectl applies by default),
// or they are not manifests at all.
var corpusInvalid = map[string]string{
	"argocd-example-apps/plugins/kustomized-helm/overlays/guestbook-deployment.yaml":                 "a kustomize patch, not a whole object: apps/v1 Deployment without selector or template",
	"kubernetes-examples/_archived/newrelic-infrastructure/newrelic-config-template.yaml":            "template with {{ }} placeholders, not YAML",
	"kubernetes-examples/_archived/newrelic/newrelic-config-template.yaml":                           "template with {{ }} placeholders, not YAML",
	"kubernetes-examples/_archived/storage/vitess/etcd-controller-template.yaml":                     "template with {{ }} placeholders, not YAML",
	"kubernetes-examples/_archived/storage/vitess/etcd-service-template.yaml":                        "template with {{ }} placeholders, not YAML",
	"kubernetes-examples/_archived/storage/vitess/vtgate-controller-template.yaml":                   "template with {{ }} placeholders, not YAML",
	"kubernetes-examples/_archived/storage/vitess/vttablet-pod-template.yaml":                        "template: name and labels hold {{uid}} placeholders",
	"kubernetes-examples/_archived/newrelic/newrelic-config.yaml":                                    "only comments: a placeholder overwritten by a script",
	"kubernetes-examples/_archived/openshift-origin/secret.json":                                     "empty file: a placeholder",
	"kubernetes-examples/_archived/openshift-origin/etcd-controller.yaml":                            "duplicate key selector",
	"kubernetes-examples/_archived/openshift-origin/etcd-discovery-controller.yaml":                  "duplicate key selector",
	"kubernetes-examples/_archived/openshift-origin/openshift-controller.yaml":                       "duplicate key selector",
	"kubernetes-examples/_archived/persistent-volume-provisioning/quobyte/quobyte-admin-secret.yaml": "duplicate key type",
	"kubernetes-examples/_archived/volumes/scaleio/sc-pvc.yaml":                                      "duplicate key storageClassName",
	"kubernetes-examples/_archived/volumes/aws_ebs/aws-ebs-web.yaml":                                 "protocol: tcp (Kubernetes accepts only upper-case TCP, UDP, SCTP)",
	"kubernetes-examples/_archived/volumes/cinder/cinder-web.yaml":                                   "protocol: tcp (Kubernetes accepts only upper-case TCP, UDP, SCTP)",
	"kubernetes-examples/_archived/volumes/fibre_channel/fc.yaml":                                    "lun: \"<ADD LUN ID Here>\" placeholder where an integer belongs",
	"kubernetes-examples/_archived/volumes/rbd/rbd.yaml":                                             "rbd.imageformat and rbd.imagefeatures are no fields of RBDVolumeSource",
	"kubernetes-examples/_archived/volumes/scaleio/pod.yaml":                                         "misspelt field scaleIO.protectionDoamin",
	"kubernetes-examples/_archived/volumes/storageos/storageos-pod.yaml":                             "storageos.pool is no field of StorageOSVolumeSource",
	"kubernetes-examples/_archived/volumes/storageos/storageos-pv.yaml":                              "storageos.secretName is no field (it is secretRef)",
	"kubernetes-examples/databases/cassandra/image/files/cassandra.yaml":                             "Cassandra's own configuration file, not a manifest",
	"kubernetes-examples/databases/cassandra/java/src/test/resources/cassandra.yaml":                 "Cassandra's own configuration file, not a manifest",
}

type corpusCount struct{ accepted, unsupported, invalid int }

// TestCorpus validates every manifest of the shared corpus and reports per
// folder how many documents were accepted, rejected as an unsupported kind,
// or rejected as invalid. Any invalid file must be listed in corpusInvalid.
func TestCorpus(t *testing.T) {
	dir := corpusDir()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("corpus not found at %s (set KEELSON_CORPUS): %v", dir, err)
	}
	objs, err := testSchema(t).Load(t.Context(), os.DirFS(dir), nil)
	list, _ := err.(ErrorList)
	if err != nil && list == nil {
		t.Fatal(err)
	}
	counts := map[string]*corpusCount{}
	count := func(file string) *corpusCount {
		top := file
		if parts := strings.SplitN(file, "/", 3); len(parts) == 3 {
			top = parts[0] + "/" + parts[1]
		}
		if counts[top] == nil {
			counts[top] = &corpusCount{}
		}
		return counts[top]
	}
	for _, o := range objs {
		count(o.File).accepted++
	}
	invalidFiles := map[string][]string{}
	seenDoc := map[string]bool{}
	for _, e := range list {
		doc := fmt.Sprintf("%s#%d", e.File, e.Doc)
		if seenDoc[doc] {
			continue
		}
		seenDoc[doc] = true
		if strings.Contains(e.Msg, "unsupported kind") || strings.Contains(e.Msg, " is supported as apiVersion ") {
			count(e.File).unsupported++
			continue
		}
		count(e.File).invalid++
		invalidFiles[e.File] = append(invalidFiles[e.File], e.Error())
	}
	var folders []string
	for f := range counts {
		folders = append(folders, f)
	}
	sort.Strings(folders)
	for _, f := range folders {
		c := counts[f]
		t.Logf("%-45s accepted %3d, unsupported kind %3d, invalid %3d", f, c.accepted, c.unsupported, c.invalid)
	}
	for file, errs := range invalidFiles {
		if _, ok := corpusInvalid[file]; !ok {
			t.Errorf("%s rejected but not listed as really invalid:\n  %s", file, strings.Join(errs, "\n  "))
		}
	}
	for file, reason := range corpusInvalid {
		if _, ok := invalidFiles[file]; !ok {
			t.Errorf("%s is listed as invalid (%s) but was not rejected: drop it from the list", file, reason)
		}
	}
}
