// Command govmomi-inventory is the Go side of bench/vsphere-inventory.ts: it logs in to a vSphere SDK URL,
// reads the same 12 VirtualMachine properties as hvkit's inventory.listGuests() through a ContainerView,
// decodes them into mo.VirtualMachine, destroys the view and logs out; it prints one line of JSON per run
// with the time from login to logout.
//
// Build (Debian's govmomi, no modules): GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/govmomi-inventory .
// Run: govmomi-inventory -url http://user:pass@127.0.0.1:port/sdk -runs 7
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
)

var paths = []string{
	"name",
	"config.uuid",
	"config.instanceUuid",
	"runtime.powerState",
	"config.hardware.numCPU",
	"config.hardware.memoryMB",
	"runtime.host",
	"config.template",
	"config.guestId",
	"config.cpuAllocation",
	"config.memoryAllocation",
	"config.hardware.device",
}

func once(ctx context.Context, u *url.URL) (int, time.Duration, error) {
	start := time.Now()
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return 0, 0, err
	}
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return 0, 0, err
	}
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, paths, &vms); err != nil {
		return 0, 0, err
	}
	if err := v.Destroy(ctx); err != nil {
		return 0, 0, err
	}
	if err := c.Logout(ctx); err != nil {
		return 0, 0, err
	}
	return len(vms), time.Since(start), nil
}

func main() {
	raw := flag.String("url", "", "SDK URL with user:password")
	runs := flag.Int("runs", 7, "runs")
	flag.Parse()
	u, err := url.Parse(*raw)
	if err != nil || *raw == "" {
		fmt.Fprintln(os.Stderr, "need -url http://user:pass@host:port/sdk")
		os.Exit(2)
	}
	ctx := context.Background()
	for i := 0; i < *runs; i++ {
		n, d, err := once(ctx, u)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out, _ := json.Marshal(map[string]interface{}{"vms": n, "ms": float64(d.Microseconds()) / 1000})
		fmt.Println(string(out))
	}
}
