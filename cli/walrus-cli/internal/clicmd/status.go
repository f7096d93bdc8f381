package clicmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// parseMetrics decodes what it can: a field of an unexpected type is left
// zero instead of failing the whole status.
func parseMetrics(body []byte) (status.Metrics, error) {
	var m status.Metrics
	err := json.Unmarshal(body, &m)
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		err = nil
	}
	if err != nil {
		return m, fmt.Errorf("METRICS reply is not JSON: %w", err)
	}
	return m, nil
}

// nodeStatus is one row of the status table (and one object of --output json).
type nodeStatus struct {
	Node         *uint64 `json:"node"`
	Addr         string  `json:"addr"`
	State        string  `json:"state"`
	Term         *uint64 `json:"term"`
	Leader       *uint64 `json:"leader"`
	LastLogIndex *uint64 `json:"last_log_index"`
	Applied      *uint64 `json:"applied"`
	Lag          *uint64 `json:"lag"` // leader's last_log_index - this node's match_index
	Error        string  `json:"error,omitempty"`
	metrics      status.Metrics
}

func ptr(v uint64) *uint64 { return &v }

func optCell(v *uint64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatUint(*v, 10)
}

// metricsOf asks one node for METRICS within --timeout.
func (a *app) metricsOf(ctx context.Context, addr string) (status.Metrics, []byte, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	c, err := a.dial(ctx, addr, a.timeout)
	if err != nil {
		return status.Metrics{}, nil, classify(ctx, addr, err)
	}
	defer c.Close()
	rep, err := c.Do(ctx, protocol.Request{Command: protocol.CmdMetrics})
	if err != nil {
		return status.Metrics{}, nil, classify(ctx, addr, err)
	}
	if rep.Kind == protocol.ReplyErr {
		return status.Metrics{}, nil, &replyError{msg: string(rep.Body)}
	}
	m, err := parseMetrics(rep.Body)
	return m, rep.Body, err
}

// clusterAddrs returns the client addresses to query: --addrs when given,
// otherwise the members --addr knows. METRICS lists members by Raft address;
// a node may add their client addresses (any object under a key containing
// "client" that maps ids to addresses). Without that, the client address of
// each member is guessed by applying --addr's offset between client and Raft
// port, which is how the sample configs are laid out; note says so.
//
// guessedID maps each guessed address to the node id it was derived from,
// so that a wrong guess shows as such instead of as a confusing row.
func (a *app) clusterAddrs(ctx context.Context, addrsFlag string) (addrs []string, guessedID map[string]uint64, note string, err error) {
	if list := splitAddrs(addrsFlag); len(list) > 0 {
		return list, nil, "", nil
	}
	m, body, err := a.metricsOf(ctx, a.addr)
	if err != nil {
		return nil, nil, "", err
	}
	if clients := findClientAddrs(body); len(clients) > 0 {
		return sortedByID(clients), nil, "", nil
	}
	raft := m.MembershipConfig.Membership.Nodes
	if len(raft) == 0 {
		return []string{a.addr}, nil, fmt.Sprintf("%s lists no members; pass --addrs to query more nodes", a.addr), nil
	}
	self, ok := raft[strconv.FormatUint(m.ID, 10)]
	if !ok {
		return []string{a.addr}, nil, "cannot map members to client addresses; pass --addrs", nil
	}
	_, selfRaftPort, err1 := net.SplitHostPort(self)
	_, selfClientPort, err2 := net.SplitHostPort(a.addr)
	rp, err3 := strconv.Atoi(selfRaftPort)
	cp, err4 := strconv.Atoi(selfClientPort)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return []string{a.addr}, nil, "cannot map members to client addresses; pass --addrs", nil
	}
	guessed := map[string]string{}
	guessedID = map[string]uint64{}
	for id, r := range raft {
		host, port, err := net.SplitHostPort(r)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			continue
		}
		addr := net.JoinHostPort(host, strconv.Itoa(p+cp-rp))
		guessed[id] = addr
		if n, err := strconv.ParseUint(id, 10, 64); err == nil {
			guessedID[addr] = n
		}
	}
	guessed[strconv.FormatUint(m.ID, 10)] = a.addr
	return sortedByID(guessed), guessedID, "client addresses guessed from Raft addresses (client port - Raft port as on " + a.addr + "); pass --addrs to be exact", nil
}

// findClientAddrs looks for an id -> client address map in METRICS.
func findClientAddrs(body []byte) map[string]string {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	try := func(obj map[string]any) map[string]string {
		for k, v := range obj {
			if !strings.Contains(strings.ToLower(k), "client") {
				continue
			}
			m, ok := v.(map[string]any)
			if !ok || len(m) == 0 {
				continue
			}
			out := map[string]string{}
			for id, addr := range m {
				s, ok := addr.(string)
				if !ok {
					break
				}
				if _, _, err := net.SplitHostPort(s); err != nil {
					break
				}
				out[id] = s
			}
			if len(out) == len(m) {
				return out
			}
		}
		return nil
	}
	if out := try(doc); out != nil {
		return out
	}
	if mc, ok := doc["membership_config"].(map[string]any); ok {
		if out := try(mc); out != nil {
			return out
		}
		if mm, ok := mc["membership"].(map[string]any); ok {
			return try(mm)
		}
	}
	return nil
}

func sortedByID(m map[string]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y string) int {
		xi, _ := strconv.ParseUint(x, 10, 64)
		yi, _ := strconv.ParseUint(y, 10, 64)
		if xi != yi {
			if xi < yi {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out
}

// collectStatus asks every address for METRICS in parallel and fills in the
// replication lag from the leader's view.
func (a *app) collectStatus(ctx context.Context, addrs []string, guessedID map[string]uint64) []nodeStatus {
	rows := make([]nodeStatus, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			rows[i].Addr = addr
			m, _, err := a.metricsOf(ctx, addr)
			if err != nil {
				rows[i].State = "unreachable"
				if _, ok := errors.AsType[*replyError](err); ok {
					rows[i].State = "error"
				}
				rows[i].Error = err.Error()
				if id, ok := guessedID[addr]; ok {
					rows[i].Error = fmt.Sprintf("guessed address of node %d: %v", id, err)
				}
				return
			}
			if id, ok := guessedID[addr]; ok && id != m.ID {
				rows[i].State = "error"
				rows[i].Error = fmt.Sprintf("guessed address of node %d answers as node %d; pass --addrs", id, m.ID)
				return
			}
			rows[i] = nodeStatus{
				Node: ptr(m.ID), Addr: addr, State: m.State, Term: ptr(m.CurrentTerm),
				Leader: m.CurrentLeader, LastLogIndex: ptr(m.LastLogIndex), Applied: ptr(m.LastApplied),
				metrics: m,
			}
		})
	}
	wg.Wait()
	// Lag is measured by the leader (the one with the highest term if, during
	// an election, two claim it).
	var leader *nodeStatus
	for i := range rows {
		r := &rows[i]
		if r.State == "Leader" && (leader == nil || *r.Term > *leader.Term) {
			leader = r
		}
	}
	if leader != nil {
		for i := range rows {
			r := &rows[i]
			switch {
			case r == leader:
				r.Lag = ptr(0)
			case r.Node != nil:
				if rep, ok := leader.metrics.Replication[strconv.FormatUint(*r.Node, 10)]; ok {
					lag := uint64(0)
					if leader.metrics.LastLogIndex > rep.MatchIndex {
						lag = leader.metrics.LastLogIndex - rep.MatchIndex
					}
					r.Lag = ptr(lag)
				}
			}
		}
	}
	return rows
}

// statusProblem says what is wrong with a cluster view, "" when healthy.
func statusProblem(rows []nodeStatus) string {
	var down, leaders int
	for _, r := range rows {
		if r.Node == nil {
			down++
		}
		if r.State == "Leader" {
			leaders++
		}
	}
	var probs []string
	if down > 0 {
		probs = append(probs, fmt.Sprintf("%d of %d node(s) unreachable", down, len(rows)))
	}
	switch {
	case leaders == 0:
		probs = append(probs, "no node reports Leader")
	case leaders > 1:
		probs = append(probs, fmt.Sprintf("%d nodes report Leader", leaders))
	}
	return strings.Join(probs, "; ")
}

func writeStatusTable(w io.Writer, pal palette, rows []nodeStatus) error {
	t := &table{header: []string{"NODE", "ADDR", "STATE", "TERM", "LEADER", "LAST_LOG_INDEX", "APPLIED", "LAG"}}
	for _, r := range rows {
		state := r.State
		if r.Error != "" {
			state += " (" + r.Error + ")"
		}
		t.add(optCell(r.Node), r.Addr, state, optCell(r.Term), optCell(r.Leader),
			optCell(r.LastLogIndex), optCell(r.Applied), optCell(r.Lag))
	}
	if !pal.on {
		return t.write(w)
	}
	// Colour after the layout is done, so escape codes do not count as
	// width: the first occurrence of the state word on each row.
	var buf bytes.Buffer
	if err := t.write(&buf); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, line := range lines {
		if i == 0 || i > len(rows) {
			continue
		}
		colour := map[string]func(string) string{"Leader": pal.green, "Candidate": pal.yellow, "unreachable": pal.red, "error": pal.red}[rows[i-1].State]
		if colour != nil {
			lines[i] = strings.Replace(line, rows[i-1].State, colour(rows[i-1].State), 1)
		}
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

func checkOutput(output string) error {
	if output != "table" && output != "json" {
		return usagef("--output must be table or json, not %q", output)
	}
	return nil
}

func newStatusCmd(a *app) *cobra.Command {
	var addrsFlag, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every node's Raft state, term, leader, log indexes and replication lag",
		Long: `Ask every node for METRICS and print one row per node. The nodes are
--addrs, or the members that --addr reports. LAG is how many log entries the
leader has that the node has not replicated (from the leader's replication
map; 0 for the leader, - when unknown).

Exits 1 when a node is unreachable or the cluster does not have exactly one
leader, so it doubles as a health check.`,
		Example: `  walrus-cli status --addrs 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093
  walrus-cli --addr 127.0.0.1:9091 status --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			rows, err := a.status(cmd.Context(), cmd.ErrOrStderr(), addrsFlag)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if err := writeJSONValue(out, rows, a.pretty); err != nil {
					return err
				}
			} else if err := writeStatusTable(out, newPalette(out, a.io.Getenv), rows); err != nil {
				return err
			}
			if p := statusProblem(rows); p != "" {
				return &checkFailed{msg: p}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addrsFlag, "addrs", a.io.Getenv("WALRUS_ADDRS"), "comma-separated client addresses of the nodes (env WALRUS_ADDRS; default: members known to --addr)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func (a *app) status(ctx context.Context, errw io.Writer, addrsFlag string) ([]nodeStatus, error) {
	addrs, guessedID, note, err := a.clusterAddrs(ctx, addrsFlag)
	if err != nil {
		return nil, err
	}
	if note != "" {
		fmt.Fprintln(errw, "note: "+note)
	}
	return a.collectStatus(ctx, addrs, guessedID), nil
}
