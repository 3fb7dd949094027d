package glue

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	istiolog "istio.io/istio/pkg/log"
)

// Exit codes, as meshtrust's: 0 done (whatever the verdict in the JSON), 2 bad input.
const (
	ExitOK       = 0
	ExitBadInput = 2
)

const usage = `istio-oracle: Istio's own CA code on a cacerts directory, as JSON.

  istio-oracle version
  istio-oracle load DIR...               (several DIRs: a JSON array, in order)
  istio-oracle sign DIR... --csr FILE --id SPIFFE_ID [--ttl DURATION]
  istio-oracle reload DIR NEWDIR        (ISTIO_MULTIROOT_MESH=true as istiod reads it)
  istio-oracle serve DIR --addr 127.0.0.1:0

serve prints {"addr": ...} once it accepts; a client authenticates with
"authorization: Bearer ` + TokenPrefix + `<SPIFFE id>".
`

// IstioRelease is the Istio release the main module pins; set by main.
var IstioRelease = "unknown"

// Main runs the CLI on args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "error: "+format+"\n\n%s", append(a, usage)...)
		return ExitBadInput
	}
	if len(args) == 0 {
		return bad("a subcommand is required")
	}
	// Istio's packages log to stdout by default; stdout is this program's JSON.
	logOpts := istiolog.DefaultOptions()
	logOpts.OutputPaths = []string{"stderr"}
	logOpts.ErrorOutputPaths = []string{"stderr"}
	if err := istiolog.Configure(logOpts); err != nil {
		fmt.Fprintf(stderr, "error: configuring Istio's log: %v\n", err)
		return ExitBadInput
	}
	emit := func(v any) int {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(stderr, "error: writing JSON: %v\n", err)
			return ExitBadInput
		}
		return ExitOK
	}
	dirArg := func(fs *flag.FlagSet, rest []string, n int) ([]string, error) {
		// Positional arguments may come before the flags (`sign DIR --csr F`).
		var pos []string
		for len(rest) > 0 {
			if err := fs.Parse(rest); err != nil {
				return nil, err
			}
			rest = fs.Args()
			if len(rest) > 0 {
				pos, rest = append(pos, rest[0]), rest[1:]
			}
		}
		if (n > 0 && len(pos) != n) || (n < 0 && len(pos) == 0) {
			want := fmt.Sprint(n)
			if n < 0 {
				want = "one or more"
			}
			return nil, fmt.Errorf("%s takes %s directory argument(s), got %d", fs.Name(), want, len(pos))
		}
		for _, d := range pos {
			if st, err := os.Stat(d); err != nil || !st.IsDir() {
				return nil, fmt.Errorf("`%s` is not a directory", d)
			}
		}
		return pos, nil
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet(sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	case "version":
		return emit(map[string]string{"istio": IstioRelease})
	case "load":
		dirs, err := dirArg(fs, rest, -1)
		if err != nil {
			return bad("%v", err)
		}
		var all []LoadResult
		for _, d := range dirs {
			res, _ := Load(d)
			all = append(all, res)
		}
		if len(all) == 1 {
			return emit(all[0])
		}
		return emit(all)
	case "sign":
		csr := fs.String("csr", "", "PEM CSR file")
		id := fs.String("id", "", "SPIFFE id of the caller")
		ttl := fs.Duration("ttl", 0, "requested TTL (0: the CA's default)")
		dirs, err := dirArg(fs, rest, -1)
		if err != nil {
			return bad("%v", err)
		}
		if *csr == "" || *id == "" {
			return bad("sign needs --csr FILE and --id SPIFFE_ID")
		}
		csrPEM, err := os.ReadFile(*csr)
		if err != nil {
			return bad("reading --csr `%s`: %v", *csr, err)
		}
		type signed struct {
			Load LoadResult  `json:"load"`
			Sign *SignResult `json:"sign,omitempty"`
		}
		var all []signed
		for _, d := range dirs {
			res, c := Load(d)
			out := signed{Load: res}
			if c != nil {
				s := Sign(c, csrPEM, *id, *ttl)
				out.Sign = &s
			}
			all = append(all, out)
		}
		if len(all) == 1 {
			return emit(all[0])
		}
		return emit(all)
	case "reload":
		dirs, err := dirArg(fs, rest, 2)
		if err != nil {
			return bad("%v", err)
		}
		loaded, r := Reload(dirs[0], dirs[1])
		return emit(struct {
			Load   LoadResult   `json:"load"`
			Reload ReloadResult `json:"reload"`
		}{loaded, r})
	case "serve":
		addr := fs.String("addr", "127.0.0.1:0", "loopback address")
		dirs, err := dirArg(fs, rest, 1)
		if err != nil {
			return bad("%v", err)
		}
		res, c := Load(dirs[0])
		if c == nil {
			emit(res)
			return ExitBadInput
		}
		err = Serve(c, *addr, func(a string) {
			emit(map[string]string{"addr": a})
		})
		fmt.Fprintf(stderr, "error: serve: %v\n", err)
		return ExitBadInput
	default:
		return bad("unknown subcommand `%s`", sub)
	}
}
