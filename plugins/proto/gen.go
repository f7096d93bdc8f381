// Package proto holds the versioned protobuf definitions of the plugin
// protocol and their generated Go code (committed: CI does not run protoc).
//
// Regenerate after editing a .proto file, from this directory, with protoc
// 3.21+ (Debian: apt-get install protobuf-compiler), protoc-gen-go v1.36.12
// and protoc-gen-go-grpc v1.6.0 on PATH:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
//	go generate ./plugins/proto
package proto

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative segmentstore/v1/segmentstore.proto
