package protocol

import (
	"bytes"
	"testing"
)

var benchPut = Request{Command: CmdPut, Topic: "bench-topic", Payload: bytes.Repeat([]byte("x"), 100)}

func BenchmarkParseRequest(b *testing.B) {
	frame := benchPut.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateRequest(benchPut); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequestFrame(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequestFrame(buf[:0], benchPut)
	}
}
