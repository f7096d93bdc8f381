package group

import (
	"encoding/json"
	"fmt"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/wire"
)

func jsonReply(v any) (*wire.GroupReply, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("group: encode json: %w", err)
	}
	return reply(protocol.Raw(b)), nil
}
