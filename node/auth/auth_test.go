package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/walrus-go/walrus/node/auth"
)

func TestHashVerifyRoundTrip(t *testing.T) {
	h, err := auth.HashPassword("s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "s3cret") || !strings.HasPrefix(h, "SCRAM-SHA-256$4096:") {
		t.Fatalf("hash %q: wrong form or leaks the password", h)
	}
	c, c512, err := auth.ParseHash(h)
	if err != nil || c512 == nil || c.SHA512 || !c512.SHA512 || len(c512.StoredKey) != 64 {
		t.Fatalf("%+v %+v %v", c, c512, err)
	}
	if c.String()+" "+c512.String() != h || !strings.Contains(h, " SCRAM-SHA-512$4096:") {
		t.Fatalf("String() = %q %q, want %q", c.String(), c512.String(), h)
	}
	for _, k := range []auth.Credential{c, *c512} {
		if !k.Verify("s3cret pass") {
			t.Fatal("right password refused")
		}
		for _, wrong := range []string{"", "s3cret", "s3cret pass ", "S3cret pass"} {
			if k.Verify(wrong) {
				t.Fatalf("wrong password %q accepted", wrong)
			}
		}
	}
	// A hash made before SCRAM-SHA-512 (one credential) still parses;
	// the credentials must come 256 first.
	if _, none, err := auth.ParseHash(c.String()); err != nil || none != nil {
		t.Fatalf("SHA-256 only: %v %v", none, err)
	}
	for _, bad := range []string{c512.String(), c512.String() + " " + c.String(), c.String() + " " + c.String(), c.String() + " x"} {
		if _, _, err := auth.ParseHash(bad); !errors.Is(err, auth.ErrBadCredential) {
			t.Fatalf("ParseHash(%.40q...): %v", bad, err)
		}
	}
	h2, _ := auth.HashPassword("s3cret pass")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

// The stored keys are exactly what a SCRAM-SHA-256 client derives, so a
// SASL/SCRAM exchange (the Kafka seam) succeeds against Store.Lookup.
func TestStoreServesSCRAMConversation(t *testing.T) {
	h, _ := auth.HashPassword("pw1")
	s, err := auth.NewStore([]auth.User{{Name: "alice", PasswordHash: h}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := scram.SHA256.NewServer(s.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := scram.SHA256.NewClient("alice", "pw1", "")
	if err != nil {
		t.Fatal(err)
	}
	cc, sc := cl.NewConversation(), srv.NewConversation()
	msg, err := cc.Step("")
	for err == nil && !cc.Done() {
		if msg, err = sc.Step(msg); err != nil {
			break
		}
		msg, err = cc.Step(msg)
	}
	if err != nil || !sc.Valid() || !cc.Valid() {
		t.Fatalf("SCRAM conversation failed: %v (server valid %v)", err, sc.Valid())
	}
}

func TestStoreAuthenticate(t *testing.T) {
	h, _ := auth.HashPassword("pw")
	s, err := auth.NewStore([]auth.User{{Name: "bob", PasswordHash: h}})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Enabled() {
		t.Fatal("store with a user not enabled")
	}
	if err := s.Authenticate("bob", "pw"); err != nil {
		t.Fatal(err)
	}
	reason := func(err error) string {
		var f *auth.Failure
		if !errors.As(err, &f) || !errors.Is(err, auth.ErrAuthFailed) {
			t.Fatalf("error %v is not an *auth.Failure", err)
		}
		return f.Reason
	}
	if r := reason(s.Authenticate("bob", "nope")); r != auth.ReasonBadPassword {
		t.Fatalf("reason %s", r)
	}
	if r := reason(s.Authenticate("eve", "pw")); r != auth.ReasonUnknownUser {
		t.Fatalf("reason %s", r)
	}
	var empty *auth.Store
	if empty.Enabled() {
		t.Fatal("nil store enabled")
	}
	if r := reason(empty.Authenticate("bob", "pw")); r != auth.ReasonDisabled {
		t.Fatalf("reason %s", r)
	}
}

func TestNewStoreNamesBadEntries(t *testing.T) {
	h, _ := auth.HashPassword("pw")
	_, err := auth.NewStore([]auth.User{
		{Name: "ok", PasswordHash: h},
		{Name: "", PasswordHash: h},
		{Name: "ok", PasswordHash: h},
		{Name: "plain", PasswordHash: "hunter2"},
		{Name: "two words", PasswordHash: h},
	})
	if err == nil {
		t.Fatal("bad users accepted")
	}
	for _, want := range []string{"users[1]: empty name", "users[2] (ok): duplicate", "users[3] (plain): bad password_hash", "users[4] (two words)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatal("error echoes the bad hash (it may be a plaintext password)")
	}
}

func TestParseCredentialRejects(t *testing.T) {
	good, _ := auth.HashPassword("x")
	head, keys, _ := strings.Cut(strings.TrimPrefix(good, "SCRAM-SHA-256$"), "$")
	_, salt, _ := strings.Cut(head, ":")
	for name, s := range map[string]string{
		"empty":       "",
		"scheme":      "SCRAM-SHA-1$" + head + "$" + keys,
		"no keys":     "SCRAM-SHA-256$" + head,
		"iterations":  "SCRAM-SHA-256$10:" + salt + "$" + keys,
		"huge iters":  "SCRAM-SHA-256$99999999999:" + salt + "$" + keys,
		"salt b64":    "SCRAM-SHA-256$4096:!!$" + keys,
		"short key":   "SCRAM-SHA-256$" + head + "$AAAA:AAAA",
		"no colon":    "SCRAM-SHA-256$4096" + salt + "$" + keys,
		"bcrypt-like": "$2a$10$abcdefghijklmnopqrstuv",
	} {
		if _, err := auth.ParseCredential(s); !errors.Is(err, auth.ErrBadCredential) {
			t.Errorf("%s: %q parsed (err %v)", name, s, err)
		}
	}
}

func TestPrincipalContext(t *testing.T) {
	if p := auth.Principal(context.Background()); p != auth.Anonymous {
		t.Fatalf("principal %q", p)
	}
	if p := auth.Principal(auth.WithPrincipal(context.Background(), "carol")); p != "carol" {
		t.Fatalf("principal %q", p)
	}
}

// FuzzParseCredential: the parser never panics, and whatever it accepts
// prints back to a string it parses to the same credential.
func FuzzParseCredential(f *testing.F) {
	good, _ := auth.HashPassword("seed")
	for _, s := range []string{good, "", "SCRAM-SHA-256$", "SCRAM-SHA-256$4096:$:", "SCRAM-SHA-256$4096:AA==$" + strings.Repeat("A", 43) + "=:" + strings.Repeat("A", 43) + "="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := auth.ParseCredential(s)
		if err != nil {
			if !errors.Is(err, auth.ErrBadCredential) {
				t.Fatalf("error %v does not wrap ErrBadCredential", err)
			}
			return
		}
		c2, err := auth.ParseCredential(c.String())
		if err != nil || c2.String() != c.String() {
			t.Fatalf("accepted %q but its String %q does not round-trip: %v", s, c.String(), err)
		}
	})
}

// SCRAM-SHA-512 runs against the second credential of a password_hash;
// a user with a SHA-256 one only has none.
func TestStoreServesSCRAMSHA512(t *testing.T) {
	h, _ := auth.HashPassword("pw1")
	old, _, _ := strings.Cut(h, " ")
	s, err := auth.NewStore([]auth.User{{Name: "alice", PasswordHash: h}, {Name: "bob", PasswordHash: old}})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := scram.SHA512.NewServer(s.Lookup512)
	cl, _ := scram.SHA512.NewClient("alice", "pw1", "")
	cc, sc := cl.NewConversation(), srv.NewConversation()
	var msg string
	for !cc.Done() {
		if msg, err = cc.Step(msg); err != nil {
			t.Fatalf("client: %v", err)
		}
		if cc.Done() {
			break
		}
		if msg, err = sc.Step(msg); err != nil {
			t.Fatalf("server: %v", err)
		}
	}
	if !sc.Valid() || !cc.Valid() {
		t.Fatal("SCRAM-SHA-512 exchange not valid")
	}
	if _, err := s.Lookup512("bob"); !errors.Is(err, auth.ErrNoSHA512) {
		t.Fatalf("bob: %v", err)
	}
	if _, err := s.Lookup512("nobody"); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("nobody: %v", err)
	}
}
