package v1alpha1

// Labels and annotations keelson puts on the objects it writes from Git
// (DESIGN.md, "Who writes what"); every component reads them by these names.
const (
	// LabelSource names the sync an object comes from; gitsync lists a
	// sync's objects by it and refuses to write objects another sync owns.
	LabelSource = "keelson.dev/source"
	// AnnotationRevision is the revision that last wrote the object: a
	// commit that left the object as it was does not rewrite it.
	AnnotationRevision = "keelson.dev/revision"
	// AnnotationOrigin is "<file>:<line>" of the manifest, relative to the
	// repository root.
	AnnotationOrigin = "keelson.dev/origin"
	// AnnotationPrune set to "disabled" on an object in Git keeps the
	// object in the store after it leaves Git.
	AnnotationPrune = "keelson.dev/prune"
	// AnnotationReplaceOnChange set to "true" on an object in Git lets a
	// change of a field that cannot change on an existing object (a Job's
	// pod template, a selector) apply by deleting the object and creating
	// it again; without it such a change is refused.
	AnnotationReplaceOnChange = "keelson.dev/replace-on-change"
	// AnnotationRedactedValueSizes is on a Secret the API returns without
	// its values (to a reader without the secrets grant): a JSON object of
	// each key's value size in bytes.
	AnnotationRedactedValueSizes = "keelson.dev/redacted-value-sizes"
)

// Ordering within a revision (gitsync): waves and hooks, as Argo CD users
// know them from argocd.argoproj.io/sync-wave and argocd.argoproj.io/hook.
const (
	// AnnotationWave is an object's wave, an integer ("-1", "0", "5"; 0
	// when absent): the waves of a revision are applied lowest first, each
	// Healthy before the next one's objects are written.
	AnnotationWave = "keelson.dev/wave"
	// AnnotationHook makes a Job or a Pod in Git a hook: not one of the
	// revision's objects, but run at a point of its apply — HookPreApply,
	// HookPostApply or HookOnFailure.
	AnnotationHook = "keelson.dev/hook"
	// AnnotationHookDeletePolicy lists, comma-separated, when a hook's
	// object is deleted: HookDeleteBeforeCreation (the default),
	// HookDeleteSucceeded, HookDeleteFailed.
	AnnotationHookDeletePolicy = "keelson.dev/hook-delete-policy"
)

// Hook phases (AnnotationHook).
const (
	// HookPreApply runs before the objects of its wave are written; its
	// failure stops the revision.
	HookPreApply = "pre-apply"
	// HookPostApply runs once every object of the revision is written and
	// Healthy; its failure fails the revision.
	HookPostApply = "post-apply"
	// HookOnFailure runs when a hook or a health check fails the revision.
	HookOnFailure = "on-failure"
)

// Hook delete policies (AnnotationHookDeletePolicy).
const (
	// HookDeleteBeforeCreation deletes the hook's object left by an earlier
	// run before creating it again.
	HookDeleteBeforeCreation = "before-hook-creation"
	// HookDeleteSucceeded deletes the hook's object once it succeeded.
	HookDeleteSucceeded = "hook-succeeded"
	// HookDeleteFailed deletes the hook's object once it failed.
	HookDeleteFailed = "hook-failed"
)

// LabelControlPlane marks objects keelson's control plane makes for itself
// outside Git (the kubernetes and kube-dns services, their endpoints):
// gitsync refuses to adopt or overwrite them.
const LabelControlPlane = "keelson.dev/control-plane"

// Keelson's local-path storage: the built-in StorageClass whose claims get
// a directory on the node of their first pod.
const (
	// LocalPathProvisioner is the provisioner of the local-path
	// StorageClass; the node agents provision its claims.
	LocalPathProvisioner = "keelson.dev/local-path"
	// LocalPathClass is the name of the built-in StorageClass, the default.
	LocalPathClass = "local-path"
	// AnnotationLocalPathCapacity, on a Node, is how much storage its agent
	// gives local-path claims (a quantity, "100Gi").
	AnnotationLocalPathCapacity = "keelson.dev/local-path-capacity"
	// AnnotationLocalPathNode, on a PersistentVolume, names the node whose
	// agent provisioned it and keeps its directory.
	AnnotationLocalPathNode = "keelson.dev/local-path-node"
	// FinalizerLocalPath holds a local-path volume being deleted until its
	// node's agent has removed its directory.
	FinalizerLocalPath = "keelson.dev/local-path"
)
