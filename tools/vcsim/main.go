// Command vcsim serves govmomi's vSphere simulator on loopback for hvkit's live tests.
//
// Build (Debian's govmomi source, no modules): tools/vcsim/build.sh
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // registers the /rest tagging endpoints
)

func main() {
	kind := flag.String("model", "vpx", "vpx (vCenter with clusters) or esx (one host)")
	dc := flag.Int("dc", 1, "datacenters (vpx)")
	clusters := flag.Int("cluster", 2, "clusters per datacenter (vpx)")
	clusterHosts := flag.Int("host", 1, "hosts per cluster (vpx)")
	standalone := flag.Int("standalone-host", 1, "standalone hosts per datacenter (vpx)")
	vms := flag.Int("vm", 3, "VMs per resource pool (each cluster's root pool and each standalone host)")
	listen := flag.String("listen", "127.0.0.1:0", "SOAP listen address")
	httpListen := flag.String("http-listen", "", "also serve the same model over plain http on this address")
	useTLS := flag.Bool("tls", true, "serve https")
	certFile := flag.String("cert", "", "PEM certificate (created with -key when missing)")
	keyFile := flag.String("key", "", "PEM private key")
	user := flag.String("username", "user", "login user")
	pass := flag.String("password", "pass", "login password")
	idle := flag.Duration("idle-timeout", 0, "expire sessions idle this long (0 = never)")
	readyFile := flag.String("ready-file", "", "write url=, http_url= and thumbprint= lines here once listening")
	flag.Parse()

	model := simulator.VPX()
	if *kind == "esx" {
		model = simulator.ESX()
	} else if *kind != "vpx" {
		log.Fatalf("unknown -model %q", *kind)
	} else {
		model.Datacenter, model.Cluster, model.ClusterHost, model.Host = *dc, *clusters, *clusterHosts, *standalone
	}
	model.Machine = *vms
	simulator.SessionIdleTimeout = *idle
	if err := model.Create(); err != nil {
		log.Fatalf("create model: %v", err)
	}
	defer model.Remove()

	svc := model.Service
	svc.RegisterEndpoints = true
	svc.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	thumbprint := ""
	if *useTLS {
		cert, err := loadOrCreateCert(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("certificate: %v", err)
		}
		sum := sha1.Sum(cert.Certificate[0])
		hexParts := make([]string, len(sum))
		for i, b := range sum {
			hexParts[i] = fmt.Sprintf("%02X", b)
		}
		thumbprint = strings.Join(hexParts, ":")
		svc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	server := svc.NewServer()
	defer server.Close()
	soapURL := *server.URL
	soapURL.User = nil

	httpURL := ""
	if *httpListen != "" {
		l, err := net.Listen("tcp", *httpListen)
		if err != nil {
			log.Fatalf("http listen: %v", err)
		}
		plain := &http.Server{Handler: svc.ServeMux, ReadHeaderTimeout: 30 * time.Second}
		go func() { _ = plain.Serve(l) }()
		defer plain.Close()
		httpURL = (&url.URL{Scheme: "http", Host: l.Addr().String(), Path: soapURL.Path}).String()
	}

	info := fmt.Sprintf("url=%s\nhttp_url=%s\nthumbprint=%s\n", soapURL.String(), httpURL, thumbprint)
	if *readyFile != "" {
		if err := os.WriteFile(*readyFile, []byte(info), 0o644); err != nil {
			log.Fatalf("ready file: %v", err)
		}
	}
	fmt.Print(info)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}

// loadOrCreateCert reads certFile/keyFile, or writes a new self-signed P-256 certificate for
// 127.0.0.1, ::1 and localhost there when certFile does not exist yet.
func loadOrCreateCert(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, fmt.Errorf("-tls needs -cert and -key")
	}
	if _, err := os.Stat(certFile); err == nil {
		return tls.LoadX509KeyPair(certFile, keyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "hvkit vcsim", Organization: []string{"hvkit tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certFile, keyFile)
}
