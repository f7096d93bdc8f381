package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server/servertest"
)

func Example() {
	// A stand-in node; against a real one, dial e.g. "127.0.0.1:9091".
	echo, err := servertest.NewEcho()
	if err != nil {
		log.Fatal(err)
	}
	defer echo.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, echo.Addr(), client.Options{})
	if err != nil {
		log.Fatal(err) // a *client.ConnError naming the address
	}
	defer c.Close()

	if err := c.Put(ctx, "logs", []byte("hello world")); err != nil {
		log.Fatal(err)
	}
	payload, ok, err := c.Get(ctx, "logs")
	fmt.Println(len(payload), ok, err)

	// Pipelining: many requests, one write, replies in order.
	replies, err := c.Pipeline(ctx, []protocol.Request{
		{Command: protocol.CmdPut, Topic: "logs", Payload: []byte("a")},
		{Command: protocol.CmdPut, Topic: "logs", Payload: []byte("b")},
		{Command: "FROB"},
	})
	for _, r := range replies {
		fmt.Println(r)
	}

	// An ERR reply from a single call is a *client.ServerError.
	_, err = c.DoLine(ctx, "FROB")
	fmt.Println(err)
	// Output:
	// 100 true <nil>
	// OK
	// OK
	// ERR unknown command FROB
	// ERR unknown command FROB
}
