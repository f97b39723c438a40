// Command geopeak measures the peak memory of one load of a country
// database, in a fresh process so that nothing else is on the heap:
// the peak RSS (VmHWM, which includes the memory-mapped file's pages) and
// the peak of live heap objects, sampled every 200 µs.
//
//	cd benchmarks && go run ./cmd/geopeak -mode six ../../shared/data/geo-whois-asn-country.mmdb
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/geosteer/geosteer/geo"
	"github.com/oschwald/maxminddb-golang/v2"
)

var six = []string{"US", "CA", "GB", "AU", "NZ", "IE"}

func vm(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n << 10
		}
	}
	return -1
}

func main() {
	mode := flag.String("mode", "six", "floor, all or six")
	flag.Parse()
	path := flag.Arg(0)
	fi, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	runtime.GC()
	base := vm("VmHWM")
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := int64(s[0].Value.Uint64()); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				close(done)
				return
			case <-t.C:
			}
		}
	}()
	metricsBase := func() int64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		return int64(s[0].Value.Uint64())
	}()
	ctx := context.Background()
	var keep any
	switch *mode {
	case "floor":
		r, err := maxminddb.Open(path)
		if err != nil {
			log.Fatal(err)
		}
		n := 0
		for range r.Networks() {
			n++
		}
		keep = n
	case "all":
		db, err := geo.LoadMMDB(ctx, path, nil)
		if err != nil {
			log.Fatal(err)
		}
		keep = db.Sets()
	case "six":
		db, err := geo.LoadMMDB(ctx, path, &geo.Options{Countries: six})
		if err != nil {
			log.Fatal(err)
		}
		s, err := db.Group(six...)
		if err != nil {
			log.Fatal(err)
		}
		keep = s
	default:
		log.Fatalf("mode %q", *mode)
	}
	close(stop)
	<-done
	runtime.KeepAlive(keep)
	fmt.Printf("mode=%s file=%d peakRSS=%d (+%d over start) peakHeapObjects=%d (+%d) rssFile=%d\n",
		*mode, fi.Size(), vm("VmHWM"), vm("VmHWM")-base, peak.Load(), peak.Load()-metricsBase, vm("RssFile"))
}
