// Package satoken issues and checks ServiceAccount tokens in the format of
// Kubernetes' bound service account tokens: JSON Web Tokens signed with
// ES256 (ECDSA P-256, SHA-256) whose "kid" header names the signing key.
//
// A token says who it is for and for how long: the issuer (iss), the
// audiences it may be presented to (aud, always an array), when it was
// issued (iat), from and until when it is valid (nbf, exp), a random id
// (jti), the subject system:serviceaccount:<namespace>:<name> (sub), and a
// private claim "kubernetes.io" naming the namespace, the ServiceAccount and
// the objects the token is bound to, each by name and uid. Objects a token
// is not bound to are left out, and "warnafter" appears only in tokens whose
// expiry was stretched for old clients: after it, the token still works but
// its use should be reported.
//
//	{
//	  "aud": ["https://keelson.default.svc"],
//	  "exp": 1796378400, "iat": 1796374800, "nbf": 1796374800,
//	  "iss": "https://keelson.default.svc",
//	  "jti": "1c5f4cde-…",
//	  "kubernetes.io": {
//	    "namespace": "shop",
//	    "node": {"name": "node-1", "uid": "…"},
//	    "pod": {"name": "web-7d9c", "uid": "…"},
//	    "serviceaccount": {"name": "web", "uid": "…"}
//	  },
//	  "sub": "system:serviceaccount:shop:web"
//	}
//
// The claims and their JSON are Kubernetes' own, so what runs in a pod
// does not need to know keelson: client-go's in-cluster configuration and
// every tool that reads /var/run/secrets/kubernetes.io/serviceaccount/token
// present the token as a bearer token, and anything that decodes the token
// to learn its namespace, ServiceAccount or expiry finds the claims where
// Kubernetes puts them. Other servers verify tokens with the public key
// (MarshalPublicKey) and its id (KeyID), as they would verify Kubernetes'.
//
// The package holds no state: the caller keeps the key (LoadOrCreateKey),
// decides the claims, and checks that the objects a verified token names
// (ServiceAccount, pod, node) still exist with the uids it gives.
//
//	key, err := satoken.LoadOrCreateKey("/var/lib/keelson/sa.key")
//	if err != nil {
//		return err
//	}
//	signer := satoken.NewSigner(key, "https://keelson.default.svc")
//	token, err := signer.Sign(satoken.Claims{
//		Audiences: []string{"https://keelson.default.svc"},
//		Namespace: "shop", ServiceAccount: "web", ServiceAccountUID: string(sa.UID),
//		Pod: pod.Name, PodUID: string(pod.UID),
//		IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour),
//	})
//
//	verifier := &satoken.Verifier{
//		Issuer: "https://keelson.default.svc",
//		Keys: func(kid string) (*ecdsa.PublicKey, error) {
//			if kid != satoken.KeyID(&key.PublicKey) {
//				return nil, satoken.ErrUnknownKey
//			}
//			return &key.PublicKey, nil
//		},
//	}
//	claims, err := verifier.Verify(token, []string{"https://keelson.default.svc"}, time.Now())
package satoken
