package kgroup

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type state int

const (
	stateEmpty state = iota
	statePreparing
	stateCompleting
	stateStable
	stateDead
)

func (s state) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}[s]
}

type member struct {
	id, instanceID, clientID, host string
	protocolType                   string
	protocols                      []kmsg.JoinGroupRequestProtocol
	session, rebalance             time.Duration
	assignment                     []byte

	joinCh       chan *kmsg.JoinGroupResponse // set while waiting in a join phase
	syncCh       chan *kmsg.SyncGroupResponse // set while waiting for the leader
	sessionTimer Timer
}

type group struct {
	name         string
	state        state
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	pending      map[string]Timer // v4+ ids handed out with MEMBER_ID_REQUIRED
	joinTimer    Timer
	initial      bool // the join phase started from Empty: wait InitialDelay
}

func (g *group) stopTimers() {
	for _, m := range g.members {
		if m.sessionTimer != nil {
			m.sessionTimer.Stop()
		}
	}
	for _, t := range g.pending {
		t.Stop()
	}
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
}

// resetSession (re)arms m's session timer; expiry removes m.
func (c *Coordinator) resetSession(g *group, m *member) {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionTimer = c.cfg.Clock.AfterFunc(m.session, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || g.members[m.id] != m || m.joinCh != nil {
			return
		}
		c.cfg.Logger.Info("kafka group member session expired", "group", g.name, "member", m.id)
		c.removeMember(g, m)
	})
}

// removeMember drops m and rebalances what remains.
func (c *Coordinator) removeMember(g *group, m *member) {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	delete(g.members, m.id)
	if m.joinCh != nil {
		m.joinCh <- &kmsg.JoinGroupResponse{ErrorCode: errUnknownMemberID, Generation: -1}
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- &kmsg.SyncGroupResponse{ErrorCode: errUnknownMemberID}
		m.syncCh = nil
	}
	if g.leader == m.id {
		g.leader = ""
	}
	if len(g.members) == 0 {
		if g.joinTimer != nil {
			g.joinTimer.Stop()
			g.joinTimer = nil
		}
		g.state, g.leader, g.protocol = stateEmpty, "", ""
		g.generation++
		c.prune(g)
		return
	}
	if g.state == statePreparing {
		c.maybeCompleteJoin(g)
		return
	}
	c.prepareRebalance(g)
}

// prune forgets an empty group's membership state (committed offsets stay).
func (c *Coordinator) prune(g *group) {
	if len(g.members) == 0 && len(g.pending) == 0 && c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
}

// prepareRebalance starts a join phase bounded by the largest rebalance timeout.
func (c *Coordinator) prepareRebalance(g *group) {
	if g.state == statePreparing {
		return
	}
	// Followers waiting in sync must rejoin.
	for _, m := range g.members {
		if m.syncCh != nil {
			m.syncCh <- &kmsg.SyncGroupResponse{ErrorCode: errRebalanceInProgress}
			m.syncCh = nil
		}
	}
	g.initial = g.state == stateEmpty
	g.state = statePreparing
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	if g.initial {
		d = c.cfg.InitialDelay
	}
	c.armJoinTimer(g, d)
}

func (c *Coordinator) armJoinTimer(g *group, d time.Duration) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	var t Timer
	t = c.cfg.Clock.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || g.joinTimer != t || g.state != statePreparing {
			return
		}
		g.joinTimer = nil
		if g.initial {
			g.initial = false
			c.maybeCompleteJoin(g)
			return
		}
		// Rebalance timeout: members that did not rejoin are kicked out.
		for _, m := range g.members {
			if m.joinCh == nil {
				c.cfg.Logger.Info("kafka group member missed the rebalance", "group", g.name, "member", m.id)
				if m.sessionTimer != nil {
					m.sessionTimer.Stop()
				}
				delete(g.members, m.id)
			}
		}
		c.completeJoin(g)
	})
	g.joinTimer = t
}

func (c *Coordinator) maybeCompleteJoin(g *group) {
	if g.initial {
		return // the initial delay timer completes it
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return
		}
	}
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	c.completeJoin(g)
}

// completeJoin ends a join phase: new generation, protocol by vote, answers.
func (c *Coordinator) completeJoin(g *group) {
	g.generation++
	if len(g.members) == 0 {
		g.state, g.leader, g.protocol = stateEmpty, "", ""
		c.prune(g)
		return
	}
	g.protocol = selectProtocol(g)
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		for id := range g.members {
			if g.leader == "" || id < g.leader {
				g.leader = id
			}
		}
	}
	g.state = stateCompleting
	for _, m := range g.members {
		m.assignment = nil
		resp := &kmsg.JoinGroupResponse{
			Generation: g.generation, ProtocolType: kmsg.StringPtr(g.protocolType),
			Protocol: kmsg.StringPtr(g.protocol), LeaderID: g.leader, MemberID: m.id,
		}
		if m.id == g.leader {
			for _, o := range g.members {
				resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{
					MemberID: o.id, InstanceID: strPtr(o.instanceID), ProtocolMetadata: metadataOf(o, g.protocol),
				})
			}
		}
		if m.joinCh != nil {
			m.joinCh <- resp
			m.joinCh = nil
		}
		c.resetSession(g, m)
	}
}

// selectProtocol picks the protocol all members support with the most
// first-choice-weighted votes (Kafka: each member votes its most preferred
// candidate among those every member supports).
func selectProtocol(g *group) string {
	var candidates []string
	for _, m := range g.members {
		if candidates == nil {
			for _, p := range m.protocols {
				candidates = append(candidates, p.Name)
			}
			continue
		}
		candidates = filter(candidates, m)
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, name := range candidates { // candidates keep the first member's order: deterministic ties
		if best == "" || votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

func filter(cands []string, m *member) []string {
	var out []string
	for _, c := range cands {
		for _, p := range m.protocols {
			if p.Name == c {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func metadataOf(m *member, protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
