package ingress

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The nginx sub-benchmarks put a real NGINX in front of the same backend,
// configured as ingress-nginx configures it, so that the anchor of the
// proxy's goal is measured on the same machine, in the same run.

// nginxEnv names the nginx binary the benchmarks use; without it they look
// for nginx in PATH, then /usr/sbin/nginx.
const nginxEnv = "KEELSON_NGINX"

// nginxHowTo says how to get an nginx without installing a service.
const nginxHowTo = "set " + nginxEnv + " to an nginx binary, or put one in PATH " +
	"(on Debian, without installing a service: `apt-get download nginx && dpkg -x nginx_*.deb DIR`, then " +
	nginxEnv + "=DIR/usr/sbin/nginx)"

// nginxBinary finds the nginx to benchmark.
func nginxBinary() (string, error) {
	if p := os.Getenv(nginxEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w; %s", nginxEnv, p, err, nginxHowTo)
		}
		return p, nil
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("no nginx found: " + nginxHowTo)
}

// nginxConf is ingress-nginx's forwarding path without its Lua: as many
// workers as CPUs (worker_processes auto, unless a benchmark asks for a
// number), kept-alive connections to the upstream (its defaults:
// 320 of them, 10000 requests each; 1000 requests per client connection),
// HTTP/1.1 to the upstream with the X-Forwarded headers, no access log.
// Every path nginx writes is in dir.
const nginxConf = `{{user}}worker_processes {{workers}};
pid {{dir}}/nginx.pid;
lock_file {{dir}}/nginx.lock;
error_log stderr warn;

events {
	worker_connections 16384;
	multi_accept on;
}

http {
	access_log off;
	client_body_temp_path {{dir}}/client_body;
	proxy_temp_path {{dir}}/proxy;
	fastcgi_temp_path {{dir}}/fastcgi;
	uwsgi_temp_path {{dir}}/uwsgi;
	scgi_temp_path {{dir}}/scgi;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_timeout 75s;
	keepalive_requests 1000;

	upstream bench {
		server {{backend}};
		keepalive 320;
		keepalive_requests 10000;
		keepalive_timeout 60s;
	}

	server {
		listen {{listen}};
		server_name bench.example.com;
		location / {
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Host $host;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_pass http://bench;
		}
	}
}
`

// nginxInfo tells, once per worker_processes value, which nginx runs.
var nginxInfo sync.Map

// startNginx runs nginx in front of backend ("host:port") on a free port of
// 127.0.0.1, waits until it answers for host, and returns its address and
// the pid of its master. workers is its worker_processes, 0 for auto (as
// many as CPUs); cpus, when not "", is the CPU list (taskset -c) nginx and
// its workers are pinned to. b.Cleanup stops it (SIGQUIT) and waits for it
// to exit. It skips b when no nginx is found.
func startNginx(b *testing.B, backend, host string, workers int, cpus string) (addr string, pid int) {
	b.Helper()
	bin, err := nginxBinary()
	if err != nil {
		b.Skip(err)
	}
	var lastErr error
	for range 3 { // the free port may be taken before nginx binds it
		addr, pid, err := runNginx(b, bin, backend, host, workers, cpus)
		if err == nil {
			return addr, pid
		}
		lastErr = err
	}
	b.Fatal(lastErr)
	return "", 0
}

func runNginx(b *testing.B, bin, backend, host string, workers int, cpus string) (addr string, pid int, err error) {
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, err
	}
	addr = ln.Addr().String()
	_ = ln.Close()
	user := ""
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who may not enter dir.
		user = "user root;\n"
	}
	wp := "auto"
	if workers > 0 {
		wp = strconv.Itoa(workers)
	}
	conf := strings.NewReplacer("{{user}}", user, "{{workers}}", wp, "{{dir}}", dir, "{{backend}}", backend, "{{listen}}", addr).Replace(nginxConf)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", 0, err
	}

	args := []string{bin, "-p", dir + "/", "-c", confPath, "-g", "daemon off;"}
	if cpus != "" {
		// taskset execs nginx: the master keeps the pid, its workers
		// inherit the affinity.
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer // read only once Wait has returned
	cmd.Stdout, cmd.Stderr = &out, &out
	// Should the benchmark die without its cleanup, nginx quits too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return "", 0, fmt.Errorf("start %s: %w", args[0], err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // master and workers
			<-exited
		}
		// The master exits once its workers have.
	}

	// Wait until it answers.
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return "", 0, fmt.Errorf("nginx exited before answering:\n%s", out.String())
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = host
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			stop()
			return "", 0, fmt.Errorf("nginx not answering on %s after 10s (%v):\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Cleanup(stop)

	if _, told := nginxInfo.LoadOrStore(wp, true); !told {
		v, _ := exec.Command(bin, "-v").CombinedOutput()
		b.Logf("%s, %d workers (worker_processes %s, %d CPUs)",
			strings.TrimSpace(string(v)), len(children(cmd.Process.Pid)), wp, runtime.NumCPU())
	}
	return addr, cmd.Process.Pid, nil
}

// children are the processes pid started: the workers of an nginx master.
func children(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	return strings.Fields(string(b))
}

// treeCPU is the CPU time a process and its children (the nginx master and
// its workers) have used, as the scheduler counts it (0 where /proc does
// not tell).
func treeCPU(master int) time.Duration {
	var sum time.Duration
	for _, pid := range append(children(master), strconv.Itoa(master)) {
		tasks, _ := filepath.Glob("/proc/" + pid + "/task/*/schedstat")
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				sum += time.Duration(ns)
			}
		}
	}
	return sum
}
