module github.com/geosteer/geosteer/benchmarks

go 1.26.0

replace github.com/geosteer/geosteer => ../

require (
	github.com/gaissmai/bart v0.30.0
	github.com/geosteer/geosteer v0.0.0
	github.com/maxmind/mmdbwriter v1.2.0
	github.com/oschwald/maxminddb-golang/v2 v2.9.0
	github.com/yl2chen/cidranger v1.0.2
	go4.org/netipx v0.0.0-20260823151212-3075585bcbeb
)

require golang.org/x/sys v0.49.0 // indirect
