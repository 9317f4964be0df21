package apiserver

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// An informer survives the server's watch cache starting over: its watch
// ends with 410, it lists again and keeps following changes.
func TestInformerSurvivesCacheRestart(t *testing.T) {
	st := etcdtest.NewStore(t)
	tokens, _ := ParseTokens(strings.NewReader("t,admin,1,system:masters\n"))
	srv := New(Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Store: st, Tokens: tokens})
	hs := httptest.NewServer(srv.Handler())
	defer func() {
		srv.Close()
		hs.CloseClientConnections()
		hs.Close()
	}()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: hs.URL, BearerToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Core().V1().Pods().Informer()
	factory.Start(ctx.Done())
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	pods, _ := store.ResourceByName("pods")
	srv.cacheFor(pods).restart()
	for _, name := range []string{"a", "b"} {
		if err := st.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(inf.GetStore().List()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("informer holds %d pods after the restart, want 2", len(inf.GetStore().List()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
