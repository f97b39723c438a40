package routeros

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros/routerostest"
)

// A router that accepts the connection and never answers must not hang
// the caller, at login or later.
func TestSilentRouterTimesOut(t *testing.T) {
	for _, at := range []string{"/login", "/ip/firewall/address-list/add"} {
		t.Run(at, func(t *testing.T) {
			srv := newSim(t, routerostest.Options{Fault: func(fc routerostest.FaultContext) routerostest.Fault {
				if fc.Command.Word == at {
					return routerostest.Fault{Action: routerostest.FaultHang}
				}
				return routerostest.Fault{}
			}})
			r := &Router{Addr: srv.Addr(), User: "admin", IOTimeout: 200 * time.Millisecond}
			p := testPlan(t, randomSet(mrand.New(mrand.NewPCG(5, 5)), 20, 2))
			start := time.Now()
			_, err := r.Apply(context.Background(), p, backend.ApplyOptions{})
			if !errors.Is(err, errTimeout) || time.Since(start) > 5*time.Second {
				t.Fatalf("after %v: %v", time.Since(start), err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	srv := newSim(t, routerostest.Options{Latency: time.Millisecond, Fault: func(fc routerostest.FaultContext) routerostest.Fault {
		if n.Add(1) == 300 {
			cancel()
		}
		return routerostest.Fault{}
	}})
	r := &Router{Addr: srv.Addr(), User: "admin", Window: 8}
	p := testPlan(t, randomSet(mrand.New(mrand.NewPCG(6, 6)), 3000, 0))
	start := time.Now()
	_, err := r.Apply(ctx, p, backend.ApplyOptions{})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	// No rule points at the half-loaded list, and a re-run converges.
	if len(srv.NATRules("ip")) != 0 {
		t.Error("rules added by a cancelled sync")
	}
	apply(t, r, p)
	sameRouting(t, srv, p, sources(mrand.New(mrand.NewPCG(6, 7)), p, 500))
}

func TestCredentialsNeverLogged(t *testing.T) {
	srv := newSim(t, routerostest.Options{Users: map[string]string{"api": "right-horse"}})
	var logs bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := testPlan(t, randomSet(mrand.New(mrand.NewPCG(8, 8)), 10, 1))
	bad := &Router{Addr: srv.Addr(), User: "api", Password: "wrong-battery", Logger: lg}
	_, err := bad.Apply(context.Background(), p, backend.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "invalid user name or password") {
		t.Fatalf("bad login: %v", err)
	}
	good := &Router{Addr: srv.Addr(), User: "api", Password: "right-horse", Logger: lg}
	if _, err := good.Apply(context.Background(), p, backend.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"wrong-battery", "right-horse"} {
		if strings.Contains(logs.String(), secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("%q leaked: %s %v", secret, logs.String(), err)
		}
	}
}

func selfSigned(t *testing.T, host string) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(host)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestAPISSLVerifiesCertificate(t *testing.T) {
	cert, pool := selfSigned(t, "127.0.0.1")
	srv := newSim(t, routerostest.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	p := testPlan(t, randomSet(mrand.New(mrand.NewPCG(9, 9)), 50, 5))
	good := &Router{Addr: srv.Addr(), User: "admin", TLS: &tls.Config{RootCAs: pool}}
	apply(t, good, p)
	sameRouting(t, srv, p, sources(mrand.New(mrand.NewPCG(9, 10)), p, 200))

	_, other := selfSigned(t, "127.0.0.1")
	bad := &Router{Addr: srv.Addr(), User: "admin", TLS: &tls.Config{RootCAs: other}}
	if _, err := bad.Apply(context.Background(), p, backend.ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate accepted: %v", err)
	}
}

func TestApplyAll(t *testing.T) {
	p := testPlan(t, randomSet(mrand.New(mrand.NewPCG(10, 10)), 500, 50))
	var routers []*Router
	var srvs []*routerostest.Server
	for range 5 {
		srv := newSim(t, routerostest.Options{Latency: time.Millisecond})
		srvs = append(srvs, srv)
		routers = append(routers, &Router{Addr: srv.Addr(), User: "admin"})
	}
	routers = append(routers, &Router{Addr: "127.0.0.1:1", User: "admin", DialTimeout: time.Second}) // nobody there
	var last, calls atomic.Int64
	res := ApplyAll(context.Background(), routers, p, backend.ApplyOptions{Progress: func(d, tot int) {
		calls.Add(1)
		last.Store(int64(d))
	}}, 2)
	for i, r := range res[:5] {
		if r.Err != nil || r.Report.ElementsAdded == 0 {
			t.Errorf("router %d: %+v", i, r)
		}
		sameRouting(t, srvs[i], p, sources(mrand.New(mrand.NewPCG(10, 11)), p, 100))
	}
	if res[5].Err == nil {
		t.Error("unreachable router reported no error")
	}
	if calls.Load() == 0 || last.Load() == 0 {
		t.Error("no progress")
	}
}
