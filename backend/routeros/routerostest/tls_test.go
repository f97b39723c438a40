package routerostest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/go-routeros/routeros/v3"
)

// TestAPISSL serves the API over TLS with a self-signed certificate, as a
// router with a certificate on api-ssl does (without one RouterOS offers
// only anonymous-DH suites, which crypto/tls lacks).
func TestAPISSL(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, Options{TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	}})
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", srv.Addr(),
		&tls.Config{InsecureSkipVerify: true}) // self-signed test certificate
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := routeros.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("admin", ""); err != nil {
		t.Fatal(err)
	}
	if r := run(t, c, "/system/resource/print", "=.proplist=board-name"); r.Re[0].Map["board-name"] != "CHR" {
		t.Errorf("%v", r.Re)
	}
}

// TestSeededDuplicates: routers may hold duplicates from old imports; all
// of them block an add until the last one is removed.
func TestSeededDuplicates(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	ids, err := srv.Seed("ip", Entry{List: "L", Address: "10.0.0.1"}, Entry{List: "L", Address: "10.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	const m = "/ip/firewall/address-list/"
	if r := run(t, c, m+"print", "?address=10.0.0.1"); len(r.Re) != 2 {
		t.Fatalf("seeded duplicates: %v", r.Re)
	}
	run(t, c, m+"remove", "=.id="+ids[0])
	if msg := trapOf(t, c, m+"add", "=list=L", "=address=10.0.0.1"); msg != trapDuplicate {
		t.Errorf("after removing one of two: %q", msg)
	}
	run(t, c, m+"remove", "=.id="+ids[1])
	run(t, c, m+"add", "=list=L", "=address=10.0.0.1")
	if _, err := srv.Seed("ip", Entry{List: "L", Address: "2001:db8::1"}); err == nil {
		t.Error("seeding an IPv6 literal into /ip accepted")
	}
}
