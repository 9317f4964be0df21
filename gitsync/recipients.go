package gitsync

import (
	"context"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/gitsync/sops"
	"github.com/keelson/keelson/store"
)

// The ConfigMap in which the leading server publishes the public age
// recipients of its --decryption-key-file, one per line under
// RecipientsKey: what `keelson secret encrypt` encrypts for, read by anyone
// who may read kube-system (they are public keys).
const (
	RecipientsNamespace = "kube-system"
	RecipientsName      = "keelson-sops-recipients"
	RecipientsKey       = "recipients"
)

// PublishRecipients writes keys' recipients into the recipients ConfigMap,
// or removes it when there are none.
func PublishRecipients(ctx context.Context, st *store.Store, keys *sops.Keys) error {
	var want string
	if keys != nil {
		if r := keys.Recipients(); len(r) > 0 {
			want = strings.Join(r, "\n") + "\n"
		}
	}
	var cur corev1.ConfigMap
	err := st.Get(ctx, RecipientsNamespace, RecipientsName, &cur)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if want == "" {
			return nil
		}
		return st.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: RecipientsNamespace, Name: RecipientsName,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "keelson"}},
			Data: map[string]string{RecipientsKey: want},
		})
	case err != nil:
		return err
	case want == "":
		r, err := store.ResourceOf(&cur)
		if err != nil {
			return err
		}
		return st.Delete(ctx, r, RecipientsNamespace, RecipientsName, &metav1.Preconditions{ResourceVersion: &cur.ResourceVersion})
	case cur.Data[RecipientsKey] == want:
		return nil
	}
	cur.Data = map[string]string{RecipientsKey: want}
	return st.Update(ctx, &cur)
}
