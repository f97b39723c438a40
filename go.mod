module github.com/geosteer/geosteer

go 1.26.0

require (
	github.com/go-routeros/routeros/v3 v3.0.1
	github.com/oschwald/maxminddb-golang/v2 v2.9.0
	go4.org/netipx v0.0.0-20260823151212-3075585bcbeb
)

require golang.org/x/sys v0.49.0 // indirect
