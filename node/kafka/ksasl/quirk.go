package ksasl

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// librdkafka before 2.6.1 (Debian's kcat among others) puts the client
// nonce twice in its SCRAM client-final-message: r=<c-nonce><c-nonce
// s-nonce> instead of r=<c-nonce s-nonce> (confluentinc/librdkafka#4895),
// and computes its proof over that message. Kafka 3.8.1-3.9 accepted it;
// so does this listener, in exactly that form (the server nonce is still
// bound). Every other final message goes through xdg-go/scram unchanged.

// ErrProof is a SCRAM client proof that does not verify.
var ErrProof = errors.New("SCRAM client proof invalid")

// scramField returns the value of the attribute key ("r") in a SCRAM
// message's comma-separated fields, from index from on.
func scramField(msg, key string, from int) string {
	fields := strings.Split(msg, ",")
	for _, f := range fields[min(from, len(fields)):] {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// doubledNonce reports that c2 carries librdkafka's doubled nonce.
func (s *Session) doubledNonce(c2 string) bool {
	full, cnonce := scramField(s.s1, "r", 0), scramField(s.c1, "r", 2)
	return full != "" && cnonce != "" && scramField(c2, "r", 1) == cnonce+full
}

// finalDoubled verifies a final message with the doubled nonce as RFC
// 5802 does any other (channel binding, proof against StoredKey) and
// returns the server-final message.
func (s *Session) finalDoubled(c2 string) (string, error) {
	fields := strings.Split(c2, ",")
	i := strings.Index(s.c1, ",")
	j := -1
	if i >= 0 {
		j = strings.Index(s.c1[i+1:], ",")
	}
	if len(fields) < 3 || j < 0 {
		return "", ErrProof
	}
	gs2 := s.c1[:i+1+j+1]
	cb, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(fields[0], "c="))
	if err != nil || !strings.HasPrefix(fields[0], "c=") || string(cb) != gs2 {
		return "", fmt.Errorf("%w: SCRAM channel binding mismatch", ErrMalformed)
	}
	last := fields[len(fields)-1]
	proof, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(last, "p="))
	if err != nil || !strings.HasPrefix(last, "p=") || len(proof) != sha256.Size {
		return "", ErrProof
	}
	auth := []byte(s.c1[len(gs2):] + "," + s.s1 + "," + c2[:strings.LastIndex(c2, ",")])
	mac := func(key []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(auth)
		return m.Sum(nil)
	}
	clientKey := mac(s.cred.StoredKey)
	for k := range clientKey {
		clientKey[k] ^= proof[k]
	}
	stored := sha256.Sum256(clientKey)
	if !hmac.Equal(stored[:], s.cred.StoredKey) {
		return "", ErrProof
	}
	return "v=" + base64.StdEncoding.EncodeToString(mac(s.cred.ServerKey)), nil
}
