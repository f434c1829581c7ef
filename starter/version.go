package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// version and commit are set at link time, by release builds and by the
// Taskfile's build and install tasks:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=$(git rev-parse HEAD)" ./starter
//
// Left empty, they come from the binary's build information: the module
// version `go install ...@v1.2.0` records, and the VCS revision `go build`
// stamps in a git checkout (unless -buildvcs=false).
var (
	version string
	commit  string
)

// Modules whose versions `gust version` reports: what the binary embeds.
const (
	temporalServerModule = "go.temporal.io/server"
	temporalSDKModule    = "go.temporal.io/sdk"
	temporalUIModule     = "github.com/temporalio/ui-server/v2"
)

// buildVersions is what `gust version` prints.
type buildVersions struct {
	Gust           string `json:"gust"`
	Commit         string `json:"commit"`
	Go             string `json:"go"`
	TemporalServer string `json:"temporal_server"`
	TemporalSDK    string `json:"temporal_sdk"`
	TemporalUI     string `json:"temporal_ui"`
}

// readVersions collects gust's version and commit and the versions of the
// Temporal server, SDK and Web UI compiled into this binary.
func readVersions() buildVersions {
	v := buildVersions{Gust: version, Commit: commit, Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if v.Gust == "" && info.Main.Version != "(devel)" {
			v.Gust = info.Main.Version
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit == "" && v.Commit != "" {
			v.Commit += "-dirty"
		}
		for _, d := range info.Deps {
			mod := d
			if d.Replace != nil && d.Replace.Version != "" {
				mod = d.Replace
			}
			switch d.Path {
			case temporalServerModule:
				v.TemporalServer = mod.Version
			case temporalSDKModule:
				v.TemporalSDK = mod.Version
			case temporalUIModule:
				v.TemporalUI = mod.Version
			}
		}
	}
	for _, s := range []*string{&v.TemporalServer, &v.TemporalSDK, &v.TemporalUI, &v.Commit} {
		if *s == "" {
			*s = "unknown"
		}
	}
	if v.Gust == "" {
		v.Gust = "dev"
	}
	return v
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print gust's version and commit and the Temporal server, SDK and Web UI versions it embeds",
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			asJSON, err := jsonOutput(c)
			if err != nil {
				return err
			}
			return printVersions(c.App.Writer, asJSON)
		},
	}
}

// printVersions is `gust version`, and `gust --version` in text.
func printVersions(out io.Writer, asJSON bool) error {
	v := readVersions()
	if asJSON {
		return printJSON(out, v)
	}
	fmt.Fprintf(out, "gust %s (commit %s, %s)\n", v.Gust, v.Commit, v.Go)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Temporal server\t%s\t(%s)\n", v.TemporalServer, temporalServerModule)
	fmt.Fprintf(w, "Temporal SDK\t%s\t(%s)\n", v.TemporalSDK, temporalSDKModule)
	fmt.Fprintf(w, "Temporal Web UI\t%s\t(%s)\n", v.TemporalUI, temporalUIModule)
	return w.Flush()
}
