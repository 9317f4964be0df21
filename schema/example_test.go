package schema_test

import (
	"fmt"

	"github.com/keelson/keelson/schema"
)

func ExampleSchema_ValidateFile() {
	s, err := schema.Default()
	if err != nil {
		panic(err)
	}
	_, errs := s.ValidateFile("apps/web.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: three
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`))
	for _, e := range errs {
		fmt.Println(e)
	}
	// Output: apps/web.yaml:6:13: Deployment default/web: spec.replicas: must be an integer, got "three"
}
