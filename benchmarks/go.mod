module github.com/geosteer/geosteer/benchmarks

go 1.26.0

require (
	github.com/geosteer/geosteer v0.0.0
	github.com/go-routeros/routeros/v3 v3.0.1
	github.com/maxmind/mmdbwriter v1.2.0
	github.com/oschwald/maxminddb-golang/v2 v2.9.0
	go4.org/netipx v0.0.0-20260823151212-3075585bcbeb
)

require golang.org/x/sys v0.49.0 // indirect

replace github.com/geosteer/geosteer => ../
