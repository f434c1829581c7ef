package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/workflows"
)

// defaultGrace is how long a rotated key keeps working: a day, as the
// issue asks, long enough to roll the new key out everywhere.
const defaultGrace = 24 * time.Hour

// defaultCloudEndpoint is where `gust dev` serves its local cloud.
const defaultCloudEndpoint = "http://127.0.0.1:4566"

func tenantCommand() *cli.Command {
	grace := func(what string) cli.Flag {
		return &cli.DurationFlag{Name: "grace", Value: defaultGrace, Usage: what + " keep working this long (0: they stop at once)"}
	}
	return &cli.Command{
		Name:  "tenant",
		Usage: "manage tenants: their access keys and sub-tenant tokens, in the tenant registry <state-dir>/tenants.db",
		Description: `A tenant is an account of the local cloud. It signs its EC2 and Lambda
calls with its access key (SigV4); its customers' apps may call the gateway
with a sub-tenant token it issues. The registry is the file tenants.db in
--state-dir, the one gust dev uses; these commands work whether gust dev is
running or not. Secrets are printed once, when created, and never again.`,
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a tenant and print its access key id and secret access key, once",
				ArgsUsage: "NAME",
				Flags:     registryFlags(),
				Action:    runTenantCreate,
			},
			{
				Name:   "list",
				Usage:  "list tenants with their account ids, key ids, creation times and last use (never secrets)",
				Flags:  registryFlags(),
				Action: runTenantList,
			},
			{
				Name:      "rotate-key",
				Usage:     "issue a tenant a new access key; the old one keeps working for --grace, then stops",
				ArgsUsage: "NAME",
				Flags:     registryFlags(grace("the tenant's older keys")),
				Action:    runTenantRotateKey,
			},
			{
				Name:      "rotate-signing-key",
				Usage:     "give a tenant a new key for signing sub-tenant tokens; tokens signed with the old key verify for --grace",
				ArgsUsage: "NAME",
				Flags:     registryFlags(grace("tokens signed with the older keys")),
				Action:    runTenantRotateSigningKey,
			},
			{
				Name:      "delete",
				Usage:     "delete a tenant and its keys; refused while it has functions or live instances, unless --force",
				ArgsUsage: "NAME",
				Flags: registryFlags(
					&cli.BoolFlag{Name: "force", Usage: "delete the tenant's functions and terminate its instances first, or delete it even when the cloud cannot be asked"},
					&cli.StringFlag{Name: "endpoint", Value: defaultCloudEndpoint, EnvVars: []string{"GUST_ENDPOINT"}, Usage: "the local cloud that holds the tenant's functions and instances"},
				),
				Action: runTenantDelete,
			},
			{
				Name:      "token",
				Usage:     "issue a signed token that lets its bearer invoke the tenant's functions through the gateway as one sub-tenant",
				ArgsUsage: "NAME",
				Flags: registryFlags(
					&cli.StringFlag{Name: "subtenant", Usage: "the only sub-tenant the token may invoke as (required)"},
					&cli.StringFlag{Name: "function", Usage: "the only function the token may invoke (default: any of the tenant's)"},
					&cli.DurationFlag{Name: "ttl", Value: tenants.DefaultTokenTTL, Usage: "how long the token is valid, at most 24h"},
				),
				Action: runTenantToken,
			},
		},
	}
}

// registryFlags are a tenant command's own flags plus --state-dir and
// --output.
func registryFlags(own ...cli.Flag) []cli.Flag {
	return append(own,
		&cli.StringFlag{Name: "state-dir", Value: ".gust", EnvVars: []string{"GUST_STATE_DIR"}, Usage: "the state directory whose tenants.db is the registry (gust dev's --state-dir)"},
		outputFlag(),
	)
}

// openRegistry opens <state-dir>/tenants.db. Only create may make a new
// registry: the other commands on a directory without one say so and
// create nothing, since an empty new registry would just hide a mistyped
// --state-dir.
func openRegistry(c *cli.Context, create bool) (*tenants.Registry, error) {
	dir := c.String("state-dir")
	if dir == "" {
		return nil, usagef("--state-dir must not be empty")
	}
	path := filepath.Join(dir, registryFileName)
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, failed(fmt.Sprintf("creating state dir: %v", err))
		}
	} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, failed(fmt.Sprintf("no tenant registry at %s: run gust dev or gust tenant create", path))
	} else if err != nil {
		return nil, failed(fmt.Sprintf("tenant registry %s: %v", path, err))
	}
	reg, err := tenants.Open(path)
	if err != nil {
		return nil, failed(err.Error())
	}
	return reg, nil
}

// tenantNameArg reads the one NAME argument, a valid tenant name.
func tenantNameArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usagef("%s needs exactly one tenant NAME", c.Command.FullName())
	}
	name := c.Args().First()
	if !tenants.ValidName(name) {
		return "", usagef("tenant name %q: want 1 to %d characters from [a-zA-Z0-9_-], starting with a letter or digit", name, tenants.MaxNameLen)
	}
	return name, nil
}

// tenantArgs reads NAME and --output, then opens the existing registry:
// every usage error is reported before any file is touched.
func tenantArgs(c *cli.Context) (name string, asJSON bool, reg *tenants.Registry, err error) {
	if name, err = tenantNameArg(c); err != nil {
		return "", false, nil, err
	}
	if asJSON, err = jsonOutput(c); err != nil {
		return "", false, nil, err
	}
	if reg, err = openRegistry(c, false); err != nil {
		return "", false, nil, err
	}
	return name, asJSON, reg, nil
}

// registryFailure maps the registry's typed errors to exit codes: the
// caller's mistakes (unknown or duplicate tenant, a bad value) exit 2,
// anything else 1. The registry's errors never hold secrets.
func registryFailure(err error) error {
	switch {
	case tenants.IsNotFound(err), tenants.IsExists(err), tenants.IsInvalid(err):
		return usagef("%v", err)
	default:
		return failed(err.Error())
	}
}

// tenantKeyJSON is the fixed JSON form of a new key (issue 8): exactly
// these four fields.
type tenantKeyJSON struct {
	Tenant          string `json:"tenant"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	AccountID       string `json:"account_id"`
}

func keyJSON(cr tenants.Credentials) tenantKeyJSON {
	return tenantKeyJSON{Tenant: cr.Tenant, AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey, AccountID: cr.AccountID}
}

// printNewKey prints a key's id and secret for a person: the only time
// the secret is shown.
func printNewKey(w io.Writer, cr tenants.Credentials) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  access key id\t%s\n", cr.AccessKeyID)
	fmt.Fprintf(tw, "  secret access key\t%s\n", cr.SecretAccessKey)
	_ = tw.Flush()
	fmt.Fprintln(w, "Store the secret access key now: it cannot be shown again.")
}

func runTenantCreate(c *cli.Context) error {
	name, err := tenantNameArg(c)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	reg, err := openRegistry(c, true)
	if err != nil {
		return err
	}
	defer reg.Close()
	cr, err := reg.Create(c.Context, name)
	if err != nil {
		return registryFailure(err)
	}
	if asJSON {
		return printJSON(c.App.Writer, keyJSON(cr))
	}
	fmt.Fprintf(c.App.Writer, "Created tenant %s (account %s).\n", cr.Tenant, cr.AccountID)
	printNewKey(c.App.Writer, cr)
	return nil
}

// tenantJSON is a tenant in `gust tenant list --output json`: no secrets.
type tenantJSON struct {
	Tenant    string        `json:"tenant"`
	AccountID string        `json:"account_id"`
	Created   time.Time     `json:"created"`
	LastUsed  *time.Time    `json:"last_used"` // null: never
	Keys      []keyInfoJSON `json:"keys"`
}

type keyInfoJSON struct {
	AccessKeyID string     `json:"access_key_id"`
	Created     time.Time  `json:"created"`
	Expires     *time.Time `json:"expires"`   // null: the current key
	LastUsed    *time.Time `json:"last_used"` // null: never
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func runTenantList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	reg, err := openRegistry(c, false)
	if err != nil {
		return err
	}
	defer reg.Close()
	list, err := reg.List(c.Context)
	if err != nil {
		return failed(err.Error())
	}
	if asJSON {
		rows := make([]tenantJSON, 0, len(list))
		for _, t := range list {
			row := tenantJSON{Tenant: t.Name, AccountID: t.AccountID, Created: t.Created, LastUsed: optTime(t.LastUsed), Keys: []keyInfoJSON{}}
			for _, k := range t.Keys {
				row.Keys = append(row.Keys, keyInfoJSON{AccessKeyID: k.AccessKeyID, Created: k.Created, Expires: optTime(k.Expires), LastUsed: optTime(k.LastUsed)})
			}
			rows = append(rows, row)
		}
		return printJSON(c.App.Writer, rows)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TENANT\tACCOUNT\tCREATED\tLAST USED\tACCESS KEY\tKEY CREATED\tKEY EXPIRES\tKEY LAST USED")
	for _, t := range list {
		cols := fmt.Sprintf("%s\t%s\t%s\t%s", t.Name, t.AccountID, showTime(t.Created, "-"), showTime(t.LastUsed, "never"))
		if len(t.Keys) == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\t-\n", cols)
		}
		for i, k := range t.Keys {
			if i > 0 {
				cols = "\t\t\t" // one row per key; the tenant's columns once
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", cols, k.AccessKeyID, showTime(k.Created, "-"), showTime(k.Expires, "-"), showTime(k.LastUsed, "never"))
		}
	}
	return w.Flush()
}

func showTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.Local().Format(time.DateTime)
}

// checkGrace validates --grace.
func checkGrace(c *cli.Context) (time.Duration, error) {
	g := c.Duration("grace")
	if g < 0 {
		return 0, usagef("--grace %s must not be negative", g)
	}
	return g, nil
}

func runTenantRotateKey(c *cli.Context) error {
	grace, err := checkGrace(c)
	if err != nil {
		return err
	}
	name, asJSON, reg, err := tenantArgs(c)
	if err != nil {
		return err
	}
	defer reg.Close()
	cr, err := reg.RotateKey(c.Context, name, grace)
	if err != nil {
		return registryFailure(err)
	}
	until := time.Now().Add(grace)
	// The default tenant's key also lives in <state-dir>/credentials, which
	// gust dev wrote: keep it current, or it would stop working when the
	// grace period ends while gust dev runs on.
	var rewrote string
	if name == tenants.DefaultTenant {
		path := filepath.Join(c.String("state-dir"), credentialsFileName)
		if _, err := os.Stat(path); err == nil {
			if err := writeCredentialsFile(path, credentialsProfile, cr); err != nil {
				fmt.Fprintf(c.App.ErrWriter, "gust: warning: the new key works, but %v\n", err)
			} else {
				rewrote = path
			}
		}
	}
	if asJSON {
		return printJSON(c.App.Writer, struct {
			tenantKeyJSON
			PreviousKeysExpire time.Time `json:"previous_keys_expire"`
			CredentialsFile    string    `json:"credentials_file,omitempty"`
		}{keyJSON(cr), until.UTC(), rewrote})
	}
	fmt.Fprintf(c.App.Writer, "New access key for tenant %s (account %s).\n", cr.Tenant, cr.AccountID)
	printNewKey(c.App.Writer, cr)
	if grace == 0 {
		fmt.Fprintln(c.App.Writer, "The previous keys stopped working.")
	} else {
		fmt.Fprintf(c.App.Writer, "The previous keys keep working until %s (--grace %s).\n", until.Local().Format(time.DateTime), grace)
	}
	if rewrote != "" {
		fmt.Fprintf(c.App.Writer, "Updated %s (profile %s) with the new key.\n", rewrote, credentialsProfile)
	}
	return nil
}

func runTenantRotateSigningKey(c *cli.Context) error {
	grace, err := checkGrace(c)
	if err != nil {
		return err
	}
	name, asJSON, reg, err := tenantArgs(c)
	if err != nil {
		return err
	}
	defer reg.Close()
	if err := reg.RotateSigningKey(c.Context, name, grace); err != nil {
		return registryFailure(err)
	}
	until := time.Now().Add(grace)
	if asJSON {
		return printJSON(c.App.Writer, struct {
			Tenant             string    `json:"tenant"`
			PreviousKeysExpire time.Time `json:"previous_keys_expire"`
		}{name, until.UTC()})
	}
	fmt.Fprintf(c.App.Writer, "Tenant %s signs sub-tenant tokens with a new key from now on.\n", name)
	if grace == 0 {
		fmt.Fprintln(c.App.Writer, "Tokens signed with the previous keys are refused from now on.")
	} else {
		fmt.Fprintf(c.App.Writer, "Tokens signed with the previous keys are accepted until %s (--grace %s).\n", until.Local().Format(time.DateTime), grace)
	}
	return nil
}

func runTenantToken(c *cli.Context) error {
	name, err := tenantNameArg(c)
	if err != nil {
		return err
	}
	sub, fn, ttl := c.String("subtenant"), c.String("function"), c.Duration("ttl")
	if sub == "" {
		return usagef("--subtenant is required")
	}
	if err := workflows.ValidateSubTenant(sub); err != nil {
		return usagef("--subtenant: %v", err)
	}
	if fn != "" {
		if err := workflows.ValidateFunctionName(fn); err != nil {
			return usagef("--function: %v", err)
		}
	}
	if ttl <= 0 || ttl > tenants.MaxTokenTTL {
		return usagef("--ttl %s: want more than 0 and at most %s", ttl, tenants.MaxTokenTTL)
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	reg, err := openRegistry(c, false)
	if err != nil {
		return err
	}
	defer reg.Close()
	tok, err := reg.IssueToken(c.Context, name, sub, fn, ttl)
	if err != nil {
		return registryFailure(err)
	}
	// Verify it as the gateway will, which also reads back the expiry it
	// carries (whole seconds).
	claims, err := reg.VerifyToken(c.Context, tok)
	if err != nil {
		return failed(fmt.Sprintf("the token just issued does not verify: %v", err))
	}
	expires := claims.Expires
	if asJSON {
		return printJSON(c.App.Writer, struct {
			Tenant    string    `json:"tenant"`
			SubTenant string    `json:"subtenant"`
			Function  string    `json:"function,omitempty"`
			Token     string    `json:"token"`
			Expires   time.Time `json:"expires"`
		}{name, sub, fn, tok, expires.UTC()})
	}
	// The token alone on stdout, so TOKEN=$(gust tenant token ...) works;
	// what it allows goes to stderr.
	scope := "any function"
	if fn != "" {
		scope = "function " + fn
	}
	fmt.Fprintf(c.App.ErrWriter, "Token for tenant %s, sub-tenant %q, %s, valid until %s. Send it as: Authorization: Bearer <token>\n",
		name, sub, scope, expires.Local().Format(time.DateTime))
	fmt.Fprintln(c.App.Writer, tok)
	return nil
}

func runTenantDelete(c *cli.Context) error {
	name, err := tenantNameArg(c)
	if err != nil {
		return err
	}
	endpoint := c.String("endpoint")
	if endpoint == "" {
		return usagef("--endpoint must not be empty")
	}
	if err := checkEndpoint(endpoint); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	reg, err := openRegistry(c, false)
	if err != nil {
		return err
	}
	defer reg.Close()
	force := c.Bool("force")
	ctx := c.Context
	if _, err := reg.Get(ctx, name); err != nil {
		return registryFailure(err)
	}
	creds, err := reg.Credentials(ctx, name)
	if err != nil {
		return registryFailure(err)
	}

	// Ask the cloud, as the tenant, what it still owns.
	cloud := newTenantCloud(endpoint, creds)
	checkCtx, cancel := context.WithTimeout(ctx, cloudCheckTimeout)
	res, checkErr := cloud.resources(checkCtx)
	cancel()
	var removed tenantResources
	switch {
	case checkErr != nil && !force:
		return failed(fmt.Sprintf("not deleting tenant %s: cannot check whether it still has functions or instances: %v; start gust dev (or pass --endpoint), or pass --force to delete it anyway", name, checkErr))
	case checkErr != nil:
		fmt.Fprintf(c.App.ErrWriter, "gust: warning: %v; deleting tenant %s without removing its functions or instances (--force)\n", checkErr, name)
	case !res.empty() && !force:
		return failed(fmt.Sprintf("not deleting tenant %s: it still has %s: delete them first, or pass --force to remove them with the tenant", name, res.describe()))
	case !res.empty():
		var err error
		removed, err = cloud.remove(ctx, res)
		if err != nil {
			what := "nothing"
			if !removed.empty() {
				what = removed.describe()
			}
			return failed(fmt.Sprintf("not deleting tenant %s: removing its resources failed after removing %s: %v", name, what, err))
		}
	}
	if err := reg.Delete(ctx, name); err != nil {
		return registryFailure(err)
	}
	if asJSON {
		return printJSON(c.App.Writer, struct {
			Tenant              string   `json:"tenant"`
			Deleted             bool     `json:"deleted"`
			CloudChecked        bool     `json:"cloud_checked"`
			FunctionsDeleted    []string `json:"functions_deleted"`
			InstancesTerminated []string `json:"instances_terminated"`
		}{name, true, checkErr == nil, nonNil(removed.Functions), nonNil(removed.Instances)})
	}
	if !removed.empty() {
		fmt.Fprintf(c.App.Writer, "Removed tenant %s's %s.\n", name, removed.describe())
	}
	fmt.Fprintf(c.App.Writer, "Deleted tenant %s: its access keys, sessions and token signing keys no longer work.\n", name)
	if name == tenants.DefaultTenant {
		fmt.Fprintln(c.App.Writer, "gust dev creates the default tenant again, with a new key, on its next start.")
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// listNames shows at most a few names, then how many more.
func listNames(names []string) string {
	const show = 5
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}
