// Command incluster is a pod's program in keelson's tests: it reads the
// cluster with client-go's in-cluster config, as Prometheus or an operator
// does, and says on its output each time the answer changes.
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const account = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		fmt.Println("in-cluster config:", err)
		os.Exit(1)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Println("client:", err)
		os.Exit(1)
	}
	ns, _ := os.ReadFile(account + "namespace")
	last, lastToken := "", ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pods, err := client.CoreV1().Pods(string(ns)).List(ctx, metav1.ListOptions{})
		cancel()
		now := fmt.Sprintf("listed %d pods of %s", len(pods.Items), ns)
		if err != nil {
			now = fmt.Sprintf("list failed: %d %s", code(err), apierrors.ReasonForError(err))
		}
		if now != last {
			fmt.Println(now)
			last = now
		}
		if b, err := os.ReadFile(account + "token"); err == nil {
			if sum := fmt.Sprintf("%x", sha256.Sum256(b))[:12]; sum != lastToken {
				fmt.Println("token", sum)
				lastToken = sum
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func code(err error) int32 {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Code
	}
	return 0
}
