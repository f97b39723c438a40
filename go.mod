module github.com/geosteer/geosteer

go 1.26.0
