module github.com/geosteer/geosteer

go 1.26.0

require github.com/go-routeros/routeros/v3 v3.0.1
