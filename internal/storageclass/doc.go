// Package storageclass answers which StorageClass a claim asks for, the
// one rule the volume binder, the scheduler and the node agents' local-path
// provisioner must agree on.
//
//	class := storageclass.OfClaim(pvc, classes) // "" when it asks for none
package storageclass
