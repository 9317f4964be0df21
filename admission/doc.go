// Package admission holds the policies keelson applies to an object as it is
// stored, wherever it comes from (a sync from Git or a controller): the
// ResourceQuotas and LimitRanges of its namespace.
//
// Admission is a store.Admitter: every transaction that creates, changes or
// deletes an object a quota may count passes through it. A LimitRange's
// default requests and limits are set in a created pod (and a pod or claim
// that breaks its minimum, maximum or ratio is refused); a write that would
// take a quota's usage beyond its hard limits is refused, naming the quota
// and the numbers, as Kubernetes' admission says them. The quota's
// status.used is written in the same etcd transaction as the objects it
// counts, compare-and-swap on the quota, so it is exact under any number of
// writers: a write that raced another is built again. A quota whose status
// does not cover its spec yet (new, or its hard limits changed) is counted
// from the store first.
//
// Usage, Matches and Count are also what gitsync uses to refuse a revision
// that breaks a quota before writing anything, and what keelson plan shows.
package admission
