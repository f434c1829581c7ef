package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/codec"
)

// The codec key encrypts the payloads that carry secrets (a function's
// variables) in Temporal; see docs/security.md, "Secrets in Temporal".
// `gust dev` creates it in its state directory; every other process that
// starts, runs or reads such a workflow loads it with --codec-key-file.

// codecKeyFlag is the client commands' and the worker's key flag. It is
// repeatable for rotation: the first key encrypts, every key decrypts.
func codecKeyFlag() cli.Flag {
	return &cli.StringSliceFlag{
		Name:     "codec-key-file",
		EnvVars:  []string{"GUST_CODEC_KEY_FILE"},
		Usage:    "`FILE` of 32 random bytes that encrypts function variables in Temporal; repeatable to rotate, the first encrypts (default: <GUST_STATE_DIR or .gust>/codec.key when it exists)",
		Category: "Temporal connection",
	}
}

// defaultCodecKeyFile is where `gust dev` keeps its key by default:
// <GUST_STATE_DIR or .gust>/codec.key.
func defaultCodecKeyFile() string {
	dir := os.Getenv("GUST_STATE_DIR")
	if dir == "" {
		dir = ".gust"
	}
	return filepath.Join(dir, codec.KeyFileName)
}

// codecKeys loads the keys --codec-key-file names, or the default key file
// when the flag is not given and that file exists. No key is not an error:
// the converter then refuses only secrets. A named file that cannot be
// loaded is a usage error.
func codecKeys(c *cli.Context) ([]codec.Key, error) {
	files := c.StringSlice("codec-key-file")
	if len(files) == 0 {
		def := defaultCodecKeyFile()
		k, err := codec.LoadKeyFile(def)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil
		case err != nil:
			return nil, usagef("%v (pass --codec-key-file)", err)
		}
		return []codec.Key{k}, nil
	}
	keys := make([]codec.Key, 0, len(files))
	for _, f := range files {
		k, err := codec.LoadKeyFile(f)
		if err != nil {
			return nil, usagef("--codec-key-file: %v", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// setDataConverter gives opts gust's data converter with the keys of c, and
// its failure converter.
func setDataConverter(c *cli.Context, opts *client.Options) error {
	keys, err := codecKeys(c)
	if err != nil {
		return err
	}
	opts.DataConverter = codec.DataConverter(keys...)
	opts.FailureConverter = codec.FailureConverter()
	return nil
}

// requireCodecKey fails with one line, before anything starts, when what
// (a command and flag, like "gust fn deploy --env") must encrypt a secret
// and no key is configured.
func requireCodecKey(c *cli.Context, what string) error {
	keys, err := codecKeys(c)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return usagef("%s needs the codec key that encrypts secrets in Temporal (gust dev writes it to <state-dir>/%s; %s does not exist): pass --codec-key-file or set GUST_CODEC_KEY_FILE",
			what, codec.KeyFileName, defaultCodecKeyFile())
	}
	return nil
}

// codecFailure turns a result this process cannot decrypt into one line
// that says what to do; ok is false for every other error.
func codecFailure(err error) (_ error, ok bool) {
	switch {
	case codec.IsKeyError(err):
		return failed(fmt.Sprintf("%s: pass the codec key that encrypted it with --codec-key-file", oneLine(err.Error()))), true
	case codec.IsCorrupt(err):
		return failed(oneLine(err.Error())), true
	}
	return nil, false
}
