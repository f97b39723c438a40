module github.com/geosteer/geosteer/benchmarks

go 1.26.0

replace github.com/geosteer/geosteer => ../

require (
	github.com/gaissmai/bart v0.30.0
	github.com/geosteer/geosteer v0.0.0
	github.com/go-routeros/routeros/v3 v3.0.1
	github.com/maxmind/mmdbwriter v1.2.0
	github.com/oschwald/maxminddb-golang/v2 v2.9.0
	github.com/yl2chen/cidranger v1.0.2
	go4.org/netipx v0.0.0-20260823151212-3075585bcbeb
	golang.org/x/sys v0.49.0
)

require (
	github.com/google/go-cmp v0.6.0 // indirect
	github.com/google/nftables v0.3.0 // indirect
	github.com/mdlayher/netlink v1.7.3-0.20250113171957-fbb4dce95f42 // indirect
	github.com/mdlayher/socket v0.5.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
