package clicmd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
)

func TestClassifyExitCodes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"server ERR", &client.ServerError{Message: "unknown topic x"}, ExitReply},
		{"request refused locally", fmt.Errorf("put: %w", &protocol.RequestError{Kind: protocol.ErrInvalidTopic, Message: "invalid topic name: ../x"}), ExitUsage},
		{"deadline", context.DeadlineExceeded, ExitTimeout},
		{"connection", errors.New("connection refused"), ExitUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := exitCode(classify(ctx, "127.0.0.1:1", tt.err))
			if got != tt.want {
				t.Fatalf("exit code = %d, want %d", got, tt.want)
			}
		})
	}
}
