package ksasl_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"

	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/kafka/ksasl"
)

func store(t testing.TB) *auth.Store { return storeWith(t, "pw") }

func storeWith(t testing.TB, password string) *auth.Store {
	t.Helper()
	h, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewStore([]auth.User{{Name: "alice", PasswordHash: h}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func handshake(c *ksasl.Conn, mech string, version int16) (*kmsg.SASLHandshakeResponse, error) {
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version, req.Mechanism = version, mech
	return c.Handshake(req)
}

func authenticate(c *ksasl.Conn, b []byte) *kmsg.SASLAuthenticateResponse {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = 2, b
	resp, err := c.Authenticate(req)
	if err != nil {
		panic(err)
	}
	return resp
}

// TestConnStates: what a connection may send before and after
// authentication, and how failures count.
func TestConnStates(t *testing.T) {
	var reasons []string
	c := ksasl.NewConn(store(t), nil, func(r string) { reasons = append(reasons, r) })
	if !c.Pending() || time.Until(c.Deadline()) > ksasl.Timeout || time.Until(c.Deadline()) < ksasl.Timeout-time.Minute {
		t.Fatalf("new conn: pending %v, deadline in %v", c.Pending(), time.Until(c.Deadline()))
	}
	for _, key := range []int16{18, ksasl.HandshakeKey, ksasl.AuthenticateKey} {
		if err := c.Allow(key); err != nil {
			t.Fatalf("key %d refused before authentication: %v", key, err)
		}
	}
	if err := c.Allow(3); !errors.Is(err, ksasl.ErrUnauthenticated) || len(reasons) != 1 || reasons[0] != auth.ReasonMissing {
		t.Fatalf("metadata before authentication: %v (reasons %v)", err, reasons)
	}
	if r, err := handshake(c, ksasl.Plain, 1); err != nil || r.ErrorCode != 0 || c.Closing() {
		t.Fatalf("handshake: %+v %v", r, err)
	}
	if r := authenticate(c, []byte("\x00alice\x00pw")); r.ErrorCode != 0 || c.Pending() || c.Principal() != "alice" || c.Closing() {
		t.Fatalf("PLAIN: %+v, principal %q", r, c.Principal())
	}
	if err := c.Allow(3); err != nil {
		t.Fatal(err)
	}
	// Without users nothing is pending and SASL is refused.
	open := ksasl.NewConn(nil, nil, nil)
	if open.Pending() || open.Allow(0) != nil {
		t.Fatal("a connection without users must not need authentication")
	}
	if _, err := handshake(open, ksasl.Plain, 1); !errors.Is(err, ksasl.ErrNoUsers) {
		t.Fatalf("SASL without users: %v", err)
	}
}

// TestUnknownUserLooksKnown: an unknown SCRAM user gets a server-first
// message like a known one (a salt stable per name, the usual
// iterations), and fails only at the proof, with reason unknown_user.
func TestUnknownUserLooksKnown(t *testing.T) {
	first := func(user string) (string, *ksasl.Conn, *[]string) {
		var reasons []string
		c := ksasl.NewConn(store(t), nil, func(r string) { reasons = append(reasons, r) })
		if r, _ := handshake(c, ksasl.ScramSHA256, 1); r.ErrorCode != 0 {
			t.Fatal(r.ErrorCode)
		}
		r := authenticate(c, []byte("n,,n="+user+",r=abcdefghijkl"))
		if r.ErrorCode != 0 {
			t.Fatalf("%s: first step code %d", user, r.ErrorCode)
		}
		return string(r.SASLAuthBytes), c, &reasons
	}
	salt := func(s1 string) string { return strings.Split(s1, ",")[1] }
	k, _, _ := first("alice")
	u1, c, reasons := first("mallory")
	u2, _, _ := first("mallory")
	if salt(u1) != salt(u2) || !strings.HasSuffix(u1, ",i=4096") || !strings.HasSuffix(k, ",i=4096") {
		t.Fatalf("unknown user's server-first %q / %q vs known %q", u1, u2, k)
	}
	nonce := strings.TrimPrefix(strings.Split(u1, ",")[0], "r=")
	r := authenticate(c, []byte("c=biws,r="+nonce+",p="+base64.StdEncoding.EncodeToString(make([]byte, 32))))
	if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || !c.Closing() || len(*reasons) != 1 || (*reasons)[0] != auth.ReasonUnknownUser {
		t.Fatalf("unknown user's final: code %d closing %v reasons %v", r.ErrorCode, c.Closing(), *reasons)
	}
}

// librdkafkaFinal builds the client-final-message of librdkafka before
// 2.6.1, which doubles the client nonce, with a correct proof for it.
func librdkafkaFinal(t *testing.T, c1bare, s1, password string) string {
	t.Helper()
	fields := strings.Split(s1, ",")
	full := strings.TrimPrefix(fields[0], "r=")
	salt, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(fields[1], "s="))
	cnonce := strings.TrimPrefix(strings.Split(c1bare, ",")[1], "r=")
	cl, _ := scram.SHA256.NewClient("", password, "")
	keys, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: 4096})
	if err != nil {
		t.Fatal(err)
	}
	// ClientKey is not in StoredCredentials: derive it as RFC 5802 does.
	salted := pbkdf2(password, salt)
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	if h := sha256.Sum256(clientKey); !hmac.Equal(h[:], keys.StoredKey) {
		t.Fatal("test key derivation disagrees with xdg-go")
	}
	wop := "c=biws,r=" + cnonce + full
	sig := mac(keys.StoredKey, c1bare+","+s1+","+wop)
	for i := range sig {
		sig[i] ^= clientKey[i]
	}
	return wop + ",p=" + base64.StdEncoding.EncodeToString(sig)
}

func pbkdf2(password string, salt []byte) []byte {
	m := func(key, msg []byte) []byte {
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		return h.Sum(nil)
	}
	u := m([]byte(password), append(append([]byte{}, salt...), 0, 0, 0, 1))
	out := append([]byte{}, u...)
	for range 4095 {
		u = m([]byte(password), u)
		for i := range out {
			out[i] ^= u[i]
		}
	}
	return out
}

// TestDoubledNonce: librdkafka's doubled-nonce final message is accepted
// with the right password and refused with a wrong one; any other nonce
// is refused.
func TestDoubledNonce(t *testing.T) {
	run := func(password string, edit func(string) string) (*kmsg.SASLAuthenticateResponse, *ksasl.Conn) {
		c := ksasl.NewConn(store(t), nil, nil)
		handshake(c, ksasl.ScramSHA256, 1)
		c1bare := "n=alice,r=0123456789abcdef"
		s1 := string(authenticate(c, []byte("n,,"+c1bare)).SASLAuthBytes)
		return authenticate(c, []byte(edit(librdkafkaFinal(t, c1bare, s1, password)))), c
	}
	same := func(s string) string { return s }
	if r, c := run("pw", same); r.ErrorCode != 0 || c.Principal() != "alice" || !strings.HasPrefix(string(r.SASLAuthBytes), "v=") {
		t.Fatalf("doubled nonce, right password: %+v", r)
	}
	if r, c := run("wrong", same); r.ErrorCode != kerr.SaslAuthenticationFailed.Code || c.Principal() != "" {
		t.Fatalf("doubled nonce, wrong password: %+v", r)
	}
	tripled := func(s string) string { return strings.Replace(s, "r=", "r=0123456789abcdef", 1) }
	if r, _ := run("pw", tripled); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("tripled nonce accepted: %+v", r)
	}
	badCB := func(s string) string { return strings.Replace(s, "c=biws", "c=eSws", 1) }
	if r, _ := run("pw", badCB); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("wrong channel binding accepted: %+v", r)
	}
}

// FuzzSession: any sequence of handshakes and tokens never panics, never
// authenticates without the password, and every refusal closes.
func FuzzSession(f *testing.F) {
	f.Add("SCRAM-SHA-256", []byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"), int16(1))
	f.Add("PLAIN", []byte("\x00alice\x00nope"), []byte{}, int16(0))
	f.Add("PLAIN", []byte("alice\x00alice\x00x"), []byte("\x00"), int16(1))
	f.Add("GSSAPI", []byte{}, []byte{}, int16(1))
	f.Add("SCRAM-SHA-256", []byte("y,a=alice,n=alice,r=x,ext=1"), []byte(strings.Repeat("=", 5000)), int16(1))
	users := storeWith(f, "a long password no fuzzer guesses 7Hq2")
	f.Fuzz(func(t *testing.T, mech string, a, b []byte, version int16) {
		c := ksasl.NewConn(users, nil, nil)
		if _, err := handshake(c, mech, version&1); err != nil {
			t.Fatal(err)
		}
		for _, tok := range [][]byte{a, b} {
			if c.Closing() {
				return
			}
			if c.Raw() {
				if _, err := c.RawToken(tok); err != nil && !errors.Is(err, auth.ErrAuthFailed) {
					t.Fatalf("raw token error %v", err)
				}
				continue
			}
			r := authenticate(c, tok)
			if r.ErrorCode != 0 && !c.Closing() {
				t.Fatalf("refusal %d without closing", r.ErrorCode)
			}
		}
		if p := c.Principal(); p != "" {
			t.Fatalf("authenticated as %q without the password", p)
		}
	})
}

// addrConn is a plaintext connection with the given local address.
type addrConn struct {
	net.Conn
	local net.Addr
}

func (c addrConn) LocalAddr() net.Addr { return c.local }

// PLAIN sends the password in the clear: only over TLS or on a loopback
// connection; elsewhere it is not offered and asking for it closes.
func TestPlainNeedsTLSOffLoopback(t *testing.T) {
	remote := addrConn{local: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 9092}}
	var reasons []string
	c := ksasl.NewConn(store(t), nil, func(r string) { reasons = append(reasons, r) })
	c.CheckCert(remote)
	r, err := handshake(c, ksasl.Plain, 1)
	if err != nil || r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || !c.Closing() ||
		len(r.SupportedMechanisms) != 2 || r.SupportedMechanisms[0] != ksasl.ScramSHA256 || r.SupportedMechanisms[1] != ksasl.ScramSHA512 || len(reasons) != 1 {
		t.Fatalf("PLAIN over plaintext from another machine: %+v %v (reasons %v)", r, err, reasons)
	}
	s := ksasl.NewConn(store(t), nil, nil)
	s.CheckCert(remote)
	if r, err := handshake(s, ksasl.ScramSHA256, 1); err != nil || r.ErrorCode != 0 {
		t.Fatalf("SCRAM over plaintext: %+v %v", r, err)
	}
	l := ksasl.NewConn(store(t), nil, nil)
	l.CheckCert(addrConn{local: &net.TCPAddr{IP: net.IPv6loopback, Port: 9092}})
	if r, err := handshake(l, ksasl.Plain, 1); err != nil || r.ErrorCode != 0 || len(r.SupportedMechanisms) != 3 {
		t.Fatalf("PLAIN on loopback: %+v %v", r, err)
	}
}

// scramExchange runs a whole SCRAM exchange of an xdg-go client through c.
func scramExchange(t *testing.T, c *ksasl.Conn, hash scram.HashGeneratorFcn, mech, user, password string) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	if r, err := handshake(c, mech, 1); err != nil || r.ErrorCode != 0 {
		t.Fatalf("handshake %s: %+v %v", mech, r, err)
	}
	cl, err := hash.NewClient(user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	msg, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	r := authenticate(c, []byte(msg))
	if r.ErrorCode != 0 {
		return r
	}
	if msg, err = conv.Step(string(r.SASLAuthBytes)); err != nil {
		t.Fatal(err)
	}
	return authenticate(c, []byte(msg))
}

// SCRAM-SHA-512 works for a user whose password_hash has the SHA-512
// credential; one made before (SHA-256 only) fails like a wrong password,
// with the reason in the log.
func TestScramSHA512(t *testing.T) {
	c := ksasl.NewConn(store(t), nil, nil)
	if r := scramExchange(t, c, scram.SHA512, ksasl.ScramSHA512, "alice", "pw"); r.ErrorCode != 0 || c.Principal() != "alice" {
		t.Fatalf("SHA-512: %+v principal %q", r, c.Principal())
	}
	h, err := auth.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	old, _, _ := strings.Cut(h, " ")
	s, err := auth.NewStore([]auth.User{{Name: "alice", PasswordHash: old}})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	c = ksasl.NewConn(s, nil, func(r string) { reasons = append(reasons, r) })
	if r := scramExchange(t, c, scram.SHA512, ksasl.ScramSHA512, "alice", "pw"); r.ErrorCode != kerr.SaslAuthenticationFailed.Code || c.Principal() != "" || len(reasons) != 1 || reasons[0] != auth.ReasonBadPassword {
		t.Fatalf("SHA-256-only user over SHA-512: %+v reasons %v", r, reasons)
	}
	c = ksasl.NewConn(s, nil, nil)
	if r := scramExchange(t, c, scram.SHA256, ksasl.ScramSHA256, "alice", "pw"); r.ErrorCode != 0 || c.Principal() != "alice" {
		t.Fatalf("the same user over SHA-256: %+v", r)
	}
}
