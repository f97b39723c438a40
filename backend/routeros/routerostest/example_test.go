package routerostest_test

import (
	"fmt"
	"net"
	"time"

	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/go-routeros/routeros/v3"
)

func Example() {
	srv, err := routerostest.NewServer(routerostest.Options{
		Users: map[string]string{"api": "secret"},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	// Dial yourself and set a deadline: go-routeros v3.0.1 does not bound
	// /login with a context.
	nc, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
	if err != nil {
		panic(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := routeros.NewClient(nc)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Login("api", "secret"); err != nil {
		panic(err)
	}

	r, err := c.Run("/ip/firewall/address-list/add", "=list=mx", "=address=192.0.2.0-192.0.2.255")
	if err != nil {
		panic(err)
	}
	fmt.Println("ret", r.Done.Map["ret"])

	_, err = c.Run("/ip/firewall/address-list/add", "=list=mx", "=address=192.0.2.0/24")
	fmt.Println(err)

	for _, e := range srv.AddressList("ip", "mx") {
		fmt.Println(e.ID, e.Address)
	}
	// Output:
	// ret *1
	// from RouterOS device: failure: already have such entry
	// *1 192.0.2.0/24
}
