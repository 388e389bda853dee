module github.com/wsgate/wsgate

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/gorilla/websocket v1.5.3
	go.uber.org/goleak v1.3.0
)
