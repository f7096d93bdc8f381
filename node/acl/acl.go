// Package acl decides what a principal may do: rules of principal (or
// "*") × resource × operations, matched with default deny once any rule
// exists. It is pure (no I/O, no protocol knowledge); the Walrus client
// handler (node/access) and the Kafka listener (node/kafka/kauthz) map
// their requests onto (Op, Resource) pairs and ask Authorizer.Allowed.
package acl

import (
	"errors"
	"fmt"
	"strings"
)

// Op is an operation a rule grants.
type Op string

// The operations.
const (
	Read     Op = "read"
	Write    Op = "write"
	Create   Op = "create"
	Delete   Op = "delete"
	Describe Op = "describe"
	Admin    Op = "admin"
)

// Ops lists every operation, in documentation order.
var Ops = []Op{Read, Write, Create, Delete, Describe, Admin}

// Kind is the kind of a resource.
type Kind uint8

// Resource kinds.
const (
	Topic Kind = iota + 1
	Group
	Cluster
)

// Resource is what a request touches: a topic, a consumer group or the
// cluster.
type Resource struct {
	Kind Kind
	Name string // topic or group name; empty for Cluster
}

// TopicRes, GroupRes and ClusterRes build Resources.
func TopicRes(name string) Resource { return Resource{Kind: Topic, Name: name} }

// GroupRes is the consumer group name.
func GroupRes(name string) Resource { return Resource{Kind: Group, Name: name} }

// ClusterRes is the cluster itself (membership changes, node-wide state).
func ClusterRes() Resource { return Resource{Kind: Cluster} }

// String is how a denial names the resource: "topic:<name>",
// "group:<name>" or "cluster".
func (r Resource) String() string {
	switch r.Kind {
	case Topic:
		return "topic:" + r.Name
	case Group:
		return "group:" + r.Name
	case Cluster:
		return "cluster"
	}
	return "unknown"
}

// Spec is one rule as configured (configs.ACLConfig).
type Spec struct {
	Principal  string
	Resource   string
	Operations []string
}

// pattern is a parsed rule resource.
type pattern struct {
	any    bool // "*": every resource of every kind
	kind   Kind
	name   string
	prefix bool // name is a prefix ("logs-*")
}

func (p pattern) match(r Resource) bool {
	if p.any {
		return true
	}
	if p.kind != r.Kind {
		return false
	}
	if r.Kind == Cluster {
		return true
	}
	if p.prefix {
		return strings.HasPrefix(r.Name, p.name)
	}
	return r.Name == p.name
}

// parseResource reads the rule resource syntax: "*", "cluster",
// "group:<name>", "group:<prefix>*", "topic:<name>" (for a topic literally
// named like a keyword), "<topic>", "<topic prefix>*".
func parseResource(s string) (pattern, error) {
	if s == "" {
		return pattern{}, errors.New("empty resource: use \"*\", a topic name or prefix*, group:<name>, or cluster")
	}
	if s == "*" {
		return pattern{any: true}, nil
	}
	if s == "cluster" {
		return pattern{kind: Cluster}, nil
	}
	kind, name := Topic, s
	if rest, ok := strings.CutPrefix(s, "group:"); ok {
		kind, name = Group, rest
	} else if rest, ok := strings.CutPrefix(s, "topic:"); ok {
		name = rest
	}
	p := pattern{kind: kind, name: name}
	if n, ok := strings.CutSuffix(name, "*"); ok {
		p.name, p.prefix = n, true
	}
	if strings.Contains(p.name, "*") {
		return pattern{}, fmt.Errorf("resource %q: '*' is allowed only at the end (a prefix)", s)
	}
	if p.name == "" && !p.prefix {
		return pattern{}, fmt.Errorf("resource %q: the name is empty", s)
	}
	return p, nil
}

type rule struct {
	principal string // "*" matches every principal
	res       pattern
	ops       map[Op]bool
}

// Authorizer holds the rules. A nil *Authorizer, or one with no rules,
// allows everything (ACLs off). It is read-only after New, so safe for
// concurrent use.
type Authorizer struct {
	rules []rule
}

// New validates specs and returns the authorizer. Every error names the
// entry (acls[i]).
func New(specs []Spec) (*Authorizer, error) {
	a := &Authorizer{}
	var errs []error
	for i, s := range specs {
		where := fmt.Sprintf("acls[%d]", i)
		if s.Principal != "" {
			where += " (" + s.Principal + ")"
		}
		if strings.TrimSpace(s.Principal) == "" {
			errs = append(errs, fmt.Errorf("%s: empty principal: name a user, a certificate CommonName, or \"*\"", where))
			continue
		}
		res, err := parseResource(s.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if len(s.Operations) == 0 {
			errs = append(errs, fmt.Errorf("%s: no operations: list some of %s", where, opList()))
			continue
		}
		r := rule{principal: s.Principal, res: res, ops: make(map[Op]bool, len(s.Operations))}
		for _, o := range s.Operations {
			op, err := ParseOp(o)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			r.ops[op] = true
		}
		a.rules = append(a.rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// ParseOp parses an operation name (lower case, as documented).
func ParseOp(s string) (Op, error) {
	for _, o := range Ops {
		if string(o) == s {
			return o, nil
		}
	}
	return "", fmt.Errorf("unknown operation %q: use %s", s, opList())
}

func opList() string {
	names := make([]string, len(Ops))
	for i, o := range Ops {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

// Enabled reports whether any rule is configured (default deny on).
func (a *Authorizer) Enabled() bool { return a != nil && len(a.rules) > 0 }

// Allowed reports whether principal may do op on r: true when ACLs are
// off, or some rule for principal (or "*") covers r and grants op.
func (a *Authorizer) Allowed(principal string, op Op, r Resource) bool {
	if !a.Enabled() {
		return true
	}
	for i := range a.rules {
		ru := &a.rules[i]
		if (ru.principal == "*" || ru.principal == principal) && ru.ops[op] && ru.res.match(r) {
			return true
		}
	}
	return false
}

// DeniedError is a refused request; its message is the protocol's
// "not authorized: <principal> may not <op> <resource>".
type DeniedError struct {
	Principal string
	Op        Op
	Resource  Resource
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("not authorized: %s may not %s %s", e.Principal, e.Op, e.Resource)
}

// Check is Allowed returning a *DeniedError when not allowed.
func (a *Authorizer) Check(principal string, op Op, r Resource) error {
	if a.Allowed(principal, op, r) {
		return nil
	}
	return &DeniedError{Principal: principal, Op: op, Resource: r}
}
