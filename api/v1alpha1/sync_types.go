package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sync is the state of one Git source: where it reads, what it last applied,
// why the last attempt failed, what it owns, and how healthy that is. It is
// cluster-scoped and named after the source (label keelson.dev/source on the
// objects it owns).
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type Sync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the source as the server was configured.
	Spec SyncSpec `json:"spec,omitempty"`
	// Status is written after every sync attempt.
	Status SyncStatus `json:"status,omitempty"`
}

// SyncSpec describes the source: it mirrors the server's flags or config
// file, for people reading the status (it is not read back).
type SyncSpec struct {
	// URL of the repository, or the path of a local repository or directory.
	URL string `json:"url"`
	// Ref is the branch, tag or commit synced; empty is HEAD.
	Ref string `json:"ref,omitempty"`
	// Path is the folder of the repository that is read; empty is all of it.
	Path string `json:"path,omitempty"`
	// Interval between polls.
	Interval metav1.Duration `json:"interval,omitempty"`
	// TargetNamespace is given to namespaced objects that name none.
	TargetNamespace string `json:"targetNamespace,omitempty"`
	// Prune deletes objects that left Git.
	Prune bool `json:"prune,omitempty"`
	// AllowEmpty lets a revision delete every object of the source.
	AllowEmpty bool `json:"allowEmpty,omitempty"`
	// Suspend: the source is not synced while set.
	Suspend bool `json:"suspend,omitempty"`
	// Verified: only commits signed by a trusted OpenPGP key are applied.
	Verified bool `json:"verified,omitempty"`
	// DependsOn names the sources that must be Ready and Healthy before
	// this one applies a revision.
	DependsOn []string `json:"dependsOn,omitempty"`
	// Wait: an attempt succeeds only when every object is Healthy within
	// Timeout.
	Wait bool `json:"wait,omitempty"`
	// Timeout bounds each wave's, each hook's and Wait's health check.
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// OnFailure is "rollback" when a revision that fails its hooks or
	// health checks is replaced by the last Healthy one.
	OnFailure string `json:"onFailure,omitempty"`
}

// Condition types of a Sync, the ones Flux users know.
const (
	// ConditionReady is True when the last attempt applied its revision;
	// False with the reason of the failure otherwise.
	ConditionReady = "Ready"
	// ConditionReconciling is True while an attempt runs or retries.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the source cannot progress without a
	// new commit (the revision is invalid or fails verification).
	ConditionStalled = "Stalled"
	// ConditionHealthy is True when every object of the applied revision is
	// Healthy; written by the reconciler.
	ConditionHealthy = "Healthy"
)

// Reasons of Sync conditions and history entries.
const (
	ReasonSucceeded          = "Succeeded"
	ReasonValidationFailed   = "ValidationFailed"
	ReasonFetchFailed        = "FetchFailed"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonVerificationFailed = "VerificationFailed"
	// ReasonDecryptionFailed: a file encrypted with sops could not be
	// decrypted with the server's keys; nothing of the revision applied.
	ReasonDecryptionFailed = "DecryptionFailed"
	ReasonSuspended        = "Suspended"
	// ReasonHookFailed: a hook of the revision failed or did not finish
	// in time; the Sync's errors hold its logs' tail.
	ReasonHookFailed = "HookFailed"
	// ReasonHealthCheckFailed: a wave, or with wait the whole revision, was
	// not Healthy within the source's timeout.
	ReasonHealthCheckFailed = "HealthCheckFailed"
	// ReasonDependencyNotReady: a source named in dependsOn is not Ready and
	// Healthy, so the revision waits.
	ReasonDependencyNotReady = "DependencyNotReady"
	ReasonProgressing        = "Progressing"
)

// SyncStatus is what gitsync and the reconciler report about a source.
type SyncStatus struct {
	// ObservedGeneration is the generation of the Sync this status is for.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled (gitsync) and Healthy
	// (reconciler).
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastAppliedRevision is the commit (or directory hash) in the store.
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`
	// LastAttemptedRevision is the last revision a sync was tried for; it
	// differs from LastAppliedRevision while a revision fails.
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
	// PendingRevision is a revision whose writes did not fit in one etcd
	// transaction and have begun but not all landed. A sync that finds it
	// set (after a crash) applies it to the end before anything newer.
	PendingRevision string `json:"pendingRevision,omitempty"`
	// PendingHooks are the hooks of PendingRevision that have run to
	// success ("jobs.batch shop/migrate"): a sync that finishes the
	// revision does not run them again.
	PendingHooks []string `json:"pendingHooks,omitempty"`
	// LastHealthyRevision is the last revision gitsync saw applied and
	// Healthy as a whole (a source with wait), which onFailure: rollback
	// goes back to.
	LastHealthyRevision string `json:"lastHealthyRevision,omitempty"`
	// FailedRevision is the revision that failed its hooks or health
	// checks (and, with onFailure: rollback, was rolled back); it is not
	// tried again until the source moves.
	FailedRevision string `json:"failedRevision,omitempty"`
	// LastApplied and LastAttempted describe those commits.
	LastApplied   *Commit `json:"lastApplied,omitempty"`
	LastAttempted *Commit `json:"lastAttempted,omitempty"`
	// LastAppliedTime is when LastAppliedRevision was applied.
	LastAppliedTime *metav1.Time `json:"lastAppliedTime,omitempty"`
	// Errors of the last attempt, each "file:line: message" where a file is
	// at fault. Empty when it succeeded.
	Errors []string `json:"errors,omitempty"`
	// Inventory is every object the source owns, as of the last applied
	// revision.
	Inventory []ObjectRef `json:"inventory,omitempty"`
	// History of the last attempts, newest first, at most MaxHistory.
	History []SyncAttempt `json:"history,omitempty"`
	// DriftCorrections counts objects put back to Git's version after they
	// were changed in the store behind Git's back, since the Sync was made.
	DriftCorrections int64 `json:"driftCorrections,omitempty"`
	// Health of the objects of the applied revision (reconciler).
	Health *SyncHealth `json:"health,omitempty"`
}

// MaxHistory is how many attempts SyncStatus.History keeps.
const MaxHistory = 10

// Commit describes one revision of a source.
type Commit struct {
	// Revision is the commit hash, or "sha256:<hex>" for a plain directory.
	Revision string `json:"revision"`
	// FromGit is false for a plain directory, whose revision is a hash of
	// its files that no commit carries.
	FromGit bool `json:"fromGit,omitempty"`
	// Message is the commit's subject line; Author "Name <email>"; Time when
	// it was committed.
	Message string       `json:"message,omitempty"`
	Author  string       `json:"author,omitempty"`
	Time    *metav1.Time `json:"time,omitempty"`
}

// ObjectRef names one object of a source.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// SyncAttempt is one entry of a Sync's history.
type SyncAttempt struct {
	// Revision attempted.
	Revision string `json:"revision,omitempty"`
	// Result is a reason: Succeeded, ValidationFailed, FetchFailed,
	// ApplyFailed, VerificationFailed.
	Result string `json:"result"`
	// Message says why, for a failure.
	Message string `json:"message,omitempty"`
	// StartTime and Duration of the attempt.
	StartTime metav1.Time     `json:"startTime"`
	Duration  metav1.Duration `json:"duration"`
	// Counts of objects by what the attempt did to them.
	Created   int `json:"created,omitempty"`
	Updated   int `json:"updated,omitempty"`
	Deleted   int `json:"deleted,omitempty"`
	Unchanged int `json:"unchanged,omitempty"`
	// DriftCorrected counts updates that put back a change made in the
	// store behind Git's back.
	DriftCorrected int `json:"driftCorrected,omitempty"`
}

// SyncHealth rolls up the health of a source's objects, in the vocabulary
// of Argo CD: Healthy, Progressing, Degraded, Suspended, Missing, Unknown;
// and Unsupported, keelson's own, for objects of a kind keelson stores but
// does not act on yet.
type SyncHealth struct {
	// Status is the worst health of the objects.
	Status string `json:"status"`
	// Revision is the applied revision the health was computed for.
	Revision string `json:"revision,omitempty"`
	// Message says why, from the worst object.
	Message string `json:"message,omitempty"`
	// Objects lists the objects that are not Healthy.
	Objects []ObjectHealth `json:"objects,omitempty"`
	// LastTransitionTime is when Status last changed.
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
}

// ObjectHealth is the health of one object that is not Healthy.
type ObjectHealth struct {
	ObjectRef `json:",inline"`
	Status    string `json:"status"`
	Message   string `json:"message,omitempty"`
}

// SyncList is a list of Syncs.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type SyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Sync `json:"items"`
}

// ShortRevision cuts a revision to 12 characters for people, keeping the
// "sha256:" prefix of a directory's revision readable.
func ShortRevision(rev string) string {
	const n = 12
	if p, h, ok := strings.Cut(rev, ":"); ok && len(h) > n {
		return p + ":" + h[:n]
	}
	if len(rev) > n {
		return rev[:n]
	}
	return rev
}
