package schema

import (
	"cuelang.org/go/cue"
	"k8s.io/apimachinery/pkg/runtime"
)

// fieldProblem is a rule broken at a path inside an object.
type fieldProblem struct {
	path []cue.Selector
	msg  string
}

func check(obj runtime.Object) []fieldProblem { return nil }
