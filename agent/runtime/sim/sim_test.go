package sim_test

import (
	"bytes"
	"testing"

	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/agent/runtime/runtimetest"
	"github.com/keelson/keelson/agent/runtime/sim"
)

func TestSuite(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		return sim.New(sim.Config{Images: []string{runtimetest.Image}})
	})
}

func TestImport(t *testing.T) {
	var buf bytes.Buffer
	if err := ociarchive.Write(&buf, "localhost/app:2", []byte{}, ociarchiveConfig()); err != nil {
		t.Fatal(err)
	}
	rt := sim.New(sim.Config{})
	imgs, err := rt.Import(t.Context(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Ref != "localhost/app:2" {
		t.Fatalf("imported %+v", imgs)
	}
	if _, err := rt.Import(t.Context(), bytes.NewReader([]byte("not a tar"))); err == nil {
		t.Fatal("garbage archive imported")
	}
}
