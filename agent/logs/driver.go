package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Keys of the logging binary's arguments. containerd's shim runs the binary
// with the log URI's query as key value pairs, in no set order, so keelson
// recognises itself as a log driver by DriverArg among them.
const (
	DriverArg   = "keelson-log-path"
	maxSizeArg  = "keelson-log-max-size"
	maxFilesArg = "keelson-log-max-files"
)

// DriverArgs are the log URI query that makes keelson the logging binary of
// a container writing to path.
func DriverArgs(path string, maxSize int64, maxFiles int) map[string]string {
	return map[string]string{DriverArg: path, maxSizeArg: strconv.FormatInt(maxSize, 10), maxFilesArg: strconv.Itoa(maxFiles)}
}

// LoggerName is the small logging binary installed beside keelson.
const LoggerName = "keelson-logger"

// DriverBinary is the logging binary for a keelson binary at self:
// keelson-logger beside it when it is there and executable, else keelson
// itself, which serves as one too but costs more per container.
func DriverBinary(self string) string {
	logger := filepath.Join(filepath.Dir(self), LoggerName)
	if fi, err := os.Stat(logger); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return logger
	}
	return self
}

// IsDriver reports whether the process was started as a logging binary.
func IsDriver(args []string) bool {
	for i, a := range args {
		if a == DriverArg && i+1 < len(args) {
			return true
		}
	}
	return false
}

// DriverMain is the logging binary: it copies the container's stdout (fd 3)
// and stderr (fd 4) into the log until both close, after telling the shim it
// is ready through fd 5. It returns the process exit code.
func DriverMain(args []string) int {
	opts := map[string]string{}
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case DriverArg, maxSizeArg, maxFilesArg:
			opts[args[i]] = args[i+1]
			i++
		}
	}
	maxSize, _ := strconv.ParseInt(opts[maxSizeArg], 10, 64)
	maxFiles, _ := strconv.Atoi(opts[maxFilesArg])
	w, err := Open(opts[DriverArg], maxSize, maxFiles)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	stdout, stderr, wait := os.NewFile(3, "stdout"), os.NewFile(4, "stderr"), os.NewFile(5, "wait")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = w.Copy("stdout", stdout) })
	wg.Go(func() { errs[1] = w.Copy("stderr", stderr) })
	// Ready: a byte, then EOF, which both old and new shims take as ready.
	_, _ = wait.Write([]byte{0})
	wait.Close()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}
