package ec2

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gust-dev/gust/tenants"
)

// Launch templates: named, versioned launchSpecs of one account. A
// version's data holds only the fields launch.go reads (ImageId,
// InstanceType, KeyName, SecurityGroupIds/SecurityGroups, UserData,
// IamInstanceProfile, InstanceMarketOptions, Placement.AvailabilityZone,
// NetworkInterfaces' primary SubnetId); other LaunchTemplateData fields
// are accepted and ignored. Data is checked for syntax when the version
// is created and against the account's resources when it is launched.

const (
	maxTemplatesPerAccount = 5000
	maxTemplateVersions    = 10000
)

var templateNamePattern = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

type launchTemplate struct {
	id, name       string
	defaultVersion int
	latestVersion  int
	tags           map[string]string
	createdNs      int64
}

type templateVersion struct {
	templateID, templateName string
	version                  int
	description              string
	data                     launchSpec
	createdNs                int64
	isDefault                bool
}

// templateRef names a template and a version: $Latest, $Default (also
// when empty) or a number.
type templateRef struct{ id, name, version string }

// readTemplateRef reads prefix + LaunchTemplateId / LaunchTemplateName /
// Version; nil when neither id nor name is given.
func readTemplateRef(p params, prefix string) (*templateRef, error) {
	r := &templateRef{id: p.get(prefix + "LaunchTemplateId"), name: p.get(prefix + "LaunchTemplateName"), version: p.get(prefix + "Version")}
	switch {
	case r.id == "" && r.name == "":
		if r.version != "" {
			return nil, apiErrorf(codeMissingParameter, "The request must contain the parameter %sLaunchTemplateId or %sLaunchTemplateName", prefix, prefix)
		}
		return nil, nil
	case r.id != "" && r.name != "":
		return nil, apiErrorf(codeInvalidParameterCombo, "Specify either the launch template ID or the launch template name, not both")
	}
	return r, nil
}

// requiredTemplateRef reads the LaunchTemplateId or LaunchTemplateName
// and Version of a request about one template, which must name it.
func requiredTemplateRef(p params) (*templateRef, error) {
	ref, err := readTemplateRef(p, "")
	if err != nil {
		return nil, err
	}
	if ref == nil {
		return nil, apiErrorf(codeMissingParameter, "The request must contain the parameter LaunchTemplateId or LaunchTemplateName")
	}
	return ref, nil
}

// templateColumns are the launch_templates columns scanTemplate reads.
const templateColumns = `SELECT id, name, default_version, latest_version, tags, created_ns FROM launch_templates`

// scanTemplate reads a row of templateColumns.
func scanTemplate(row interface{ Scan(...any) error }) (*launchTemplate, error) {
	t := &launchTemplate{}
	var tags string
	if err := row.Scan(&t.id, &t.name, &t.defaultVersion, &t.latestVersion, &tags, &t.createdNs); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(tags), &t.tags)
	return t, nil
}

func loadTemplate(ctx context.Context, tx *sql.Tx, acct, id, name string) (*launchTemplate, error) {
	where, key := ` WHERE account = ? AND name = ?`, name
	if id != "" {
		if !strings.HasPrefix(id, "lt-") {
			return nil, apiErrorf(codeTemplateIDMalformed, "The specified launch template ID '%s' is malformed", id)
		}
		where, key = ` WHERE account = ? AND id = ?`, id
	}
	t, err := scanTemplate(tx.QueryRowContext(ctx, templateColumns+where, acct, key))
	switch {
	case errors.Is(err, sql.ErrNoRows) && id != "":
		return nil, apiErrorf(codeTemplateIDNotFound, "The specified launch template, with template ID %s, does not exist.", id)
	case errors.Is(err, sql.ErrNoRows):
		return nil, apiErrorf(codeTemplateNameNotFound, "The specified launch template, with template name %s, does not exist.", name)
	case err != nil:
		return nil, fmt.Errorf("reading launch template, %w", err)
	}
	return t, nil
}

// resolveVersion turns $Latest, $Default (or empty) or a number into the
// template's version number.
func (t *launchTemplate) resolveVersion(v string) (int, error) {
	switch v {
	case "", "$Default":
		return t.defaultVersion, nil
	case "$Latest":
		return t.latestVersion, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, apiErrorf(codeInvalidParameterValue, "Invalid launch template version '%s': expecting $Latest, $Default or a version number", v)
	}
	return n, nil
}

func loadVersion(ctx context.Context, tx *sql.Tx, acct string, t *launchTemplate, n int) (*templateVersion, error) {
	v := &templateVersion{templateID: t.id, templateName: t.name, version: n, isDefault: n == t.defaultVersion}
	var data string
	err := tx.QueryRowContext(ctx, `SELECT description, data, created_ns FROM launch_template_versions WHERE account = ? AND template_id = ? AND version = ?`,
		acct, t.id, n).Scan(&v.description, &data, &v.createdNs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiErrorf(codeTemplateVersionNotFound, "Could not find launch template version %d for template %s", n, t.id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading launch template version, %w", err)
	}
	if err := json.Unmarshal([]byte(data), &v.data); err != nil {
		return nil, fmt.Errorf("decoding launch template version, %w", err)
	}
	return v, nil
}

// loadNamedVersion loads t's version named v ($Latest, $Default, empty
// or a number).
func loadNamedVersion(ctx context.Context, tx *sql.Tx, acct string, t *launchTemplate, v string) (*templateVersion, error) {
	n, err := t.resolveVersion(v)
	if err != nil {
		return nil, err
	}
	return loadVersion(ctx, tx, acct, t, n)
}

// loadTemplateVersion resolves ref within the account.
func loadTemplateVersion(ctx context.Context, tx *sql.Tx, acct string, ref templateRef) (*templateVersion, error) {
	t, err := loadTemplate(ctx, tx, acct, ref.id, ref.name)
	if err != nil {
		return nil, err
	}
	return loadNamedVersion(ctx, tx, acct, t, ref.version)
}

// readVersion reads a new version's VersionDescription and
// LaunchTemplateData.
func readVersion(p params) (desc string, data launchSpec, err error) {
	desc = p.get("VersionDescription")
	if len(desc) > 255 {
		return "", launchSpec{}, apiErrorf(codeInvalidParameterValue, "Version description must be at most 255 characters")
	}
	data, err = readLaunchSpec(p, "LaunchTemplateData.")
	if err != nil {
		return "", launchSpec{}, err
	}
	return desc, data, nil
}

func insertVersion(ctx context.Context, tx *sql.Tx, acct, id string, n int, desc string, data launchSpec, now int64) error {
	b, _ := json.Marshal(data)
	_, err := tx.ExecContext(ctx, `INSERT INTO launch_template_versions (account, template_id, version, description, data, created_ns) VALUES (?, ?, ?, ?, ?, ?)`,
		acct, id, n, desc, string(b), now)
	if err != nil {
		return fmt.Errorf("storing launch template version, %w", err)
	}
	return nil
}

func (c *Cloud) createLaunchTemplate(ctx context.Context, acct string, p params, w *xmlWriter) error {
	name, err := p.required("LaunchTemplateName")
	if err != nil {
		return err
	}
	if !templateNamePattern.MatchString(name) {
		return apiErrorf(codeTemplateNameMalformed, "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'")
	}
	desc, data, err := readVersion(p)
	if err != nil {
		return err
	}
	tags, err := p.tags("TagSpecification", "launch-template")
	if err != nil {
		return err
	}
	tagJSON, _ := json.Marshal(tags)
	t := &launchTemplate{id: newID("lt-"), name: name, defaultVersion: 1, latestVersion: 1, tags: tags}
	err = c.write(ctx, func(tx *sql.Tx) error {
		t.createdNs = c.cfg.Now().UnixNano()
		var n int
		var dup bool
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(name = ?), 0) FROM launch_templates WHERE account = ?`, name, acct).Scan(&n, &dup); err != nil {
			return fmt.Errorf("counting launch templates, %w", err)
		}
		if dup {
			return apiErrorf(codeTemplateNameExists, "Launch template name already in use.")
		}
		if n >= maxTemplatesPerAccount {
			return apiErrorf(codeResourceLimitExceeded, "You've reached the maximum number of launch templates (%d).", maxTemplatesPerAccount)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO launch_templates (account, id, name, default_version, latest_version, tags, created_ns) VALUES (?, ?, ?, 1, 1, ?, ?)`,
			acct, t.id, name, string(tagJSON), t.createdNs); err != nil {
			return fmt.Errorf("storing launch template, %w", err)
		}
		return insertVersion(ctx, tx, acct, t.id, 1, desc, data, t.createdNs)
	})
	if err != nil {
		return err
	}
	writeTemplate(w, "launchTemplate", acct, t)
	return nil
}

func writeTemplate(w *xmlWriter, elem, acct string, t *launchTemplate) {
	w.open(elem)
	w.text("launchTemplateId", t.id)
	w.text("launchTemplateName", t.name)
	w.time("createTime", time.Unix(0, t.createdNs))
	w.text("createdBy", "arn:aws:iam::"+tenants.AccountID(acct)+":root")
	w.int("defaultVersionNumber", t.defaultVersion)
	w.int("latestVersionNumber", t.latestVersion)
	w.tagSet(t.tags)
	w.close(elem)
}

func (c *Cloud) createLaunchTemplateVersion(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ref, err := requiredTemplateRef(p)
	if err != nil {
		return err
	}
	desc, data, err := readVersion(p)
	if err != nil {
		return err
	}
	var v *templateVersion
	err = c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		t, err := loadTemplate(ctx, tx, acct, ref.id, ref.name)
		if err != nil {
			return err
		}
		if t.latestVersion >= maxTemplateVersions {
			return apiErrorf(codeResourceLimitExceeded, "You've reached the maximum number of versions (%d) for launch template %s.", maxTemplateVersions, t.id)
		}
		if src := p.get("SourceVersion"); src != "" {
			// The new version inherits the source's parameters, except
			// those the request gives.
			base, err := loadNamedVersion(ctx, tx, acct, t, src)
			if err != nil {
				return err
			}
			data = base.data.over(data)
		}
		n := t.latestVersion + 1
		if _, err := tx.ExecContext(ctx, `UPDATE launch_templates SET latest_version = ? WHERE account = ? AND id = ?`, n, acct, t.id); err != nil {
			return fmt.Errorf("updating launch template, %w", err)
		}
		if err := insertVersion(ctx, tx, acct, t.id, n, desc, data, now); err != nil {
			return err
		}
		v = &templateVersion{templateID: t.id, templateName: t.name, version: n, description: desc, data: data, createdNs: now}
		return nil
	})
	if err != nil {
		return err
	}
	c.writeVersion(w, "launchTemplateVersion", acct, v)
	return nil
}

// changeTemplate runs change on the template the request names, in one
// write transaction, and writes the template as change left it.
func (c *Cloud) changeTemplate(ctx context.Context, acct string, p params, w *xmlWriter, change func(tx *sql.Tx, t *launchTemplate) error) error {
	ref, err := requiredTemplateRef(p)
	if err != nil {
		return err
	}
	var t *launchTemplate
	err = c.write(ctx, func(tx *sql.Tx) error {
		var err error
		if t, err = loadTemplate(ctx, tx, acct, ref.id, ref.name); err != nil {
			return err
		}
		return change(tx, t)
	})
	if err != nil {
		return err
	}
	writeTemplate(w, "launchTemplate", acct, t)
	return nil
}

func (c *Cloud) modifyLaunchTemplate(ctx context.Context, acct string, p params, w *xmlWriter) error {
	return c.changeTemplate(ctx, acct, p, w, func(tx *sql.Tx, t *launchTemplate) error {
		v := p.get("SetDefaultVersion")
		if v == "" {
			return nil
		}
		def, err := loadNamedVersion(ctx, tx, acct, t, v)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE launch_templates SET default_version = ? WHERE account = ? AND id = ?`, def.version, acct, t.id); err != nil {
			return fmt.Errorf("updating launch template, %w", err)
		}
		t.defaultVersion = def.version
		return nil
	})
}

func (c *Cloud) deleteLaunchTemplate(ctx context.Context, acct string, p params, w *xmlWriter) error {
	return c.changeTemplate(ctx, acct, p, w, func(tx *sql.Tx, t *launchTemplate) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM launch_template_versions WHERE account = ? AND template_id = ?`, acct, t.id); err != nil {
			return fmt.Errorf("deleting launch template, %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM launch_templates WHERE account = ? AND id = ?`, acct, t.id); err != nil {
			return fmt.Errorf("deleting launch template, %w", err)
		}
		return nil
	})
}

func (c *Cloud) describeLaunchTemplates(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids, names := p.list("LaunchTemplateId"), p.list("LaunchTemplateName")
	filters, err := p.filters()
	if err != nil {
		return err
	}
	for _, f := range filters {
		if f.Name != "launch-template-name" && f.Name != "tag-key" && !strings.HasPrefix(f.Name, "tag:") {
			return apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
	}
	var list []*launchTemplate
	err = c.read(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := loadTemplate(ctx, tx, acct, id, ""); err != nil {
				return err
			}
		}
		for _, n := range names {
			if _, err := loadTemplate(ctx, tx, acct, "", n); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, templateColumns+` WHERE account = ? ORDER BY created_ns, id`, acct)
		if err != nil {
			return fmt.Errorf("listing launch templates, %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTemplate(rows)
			if err != nil {
				return fmt.Errorf("listing launch templates, %w", err)
			}
			list = append(list, t)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	w.open("launchTemplates")
	for _, t := range list {
		if (len(ids) > 0 || len(names) > 0) && !contains(ids, t.id) && !contains(names, t.name) {
			continue
		}
		show := true
		for _, f := range filters {
			switch key, isTag := strings.CutPrefix(f.Name, "tag:"); {
			case isTag:
				v, ok := t.tags[key]
				show = show && ok && contains(f.Values, v)
			case f.Name == "tag-key":
				any := false
				for _, k := range f.Values {
					_, ok := t.tags[k]
					any = any || ok
				}
				show = show && any
			default:
				show = show && contains(f.Values, t.name)
			}
		}
		if show {
			writeTemplate(w, "item", acct, t)
		}
	}
	w.close("launchTemplates")
	return nil
}

func (c *Cloud) describeLaunchTemplateVersions(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ref, err := requiredTemplateRef(p)
	if err != nil {
		return err
	}
	wanted := p.list("LaunchTemplateVersion")
	minV, err := p.integer("MinVersion", 1)
	if err != nil {
		return err
	}
	maxV, err := p.integer("MaxVersion", maxTemplateVersions)
	if err != nil {
		return err
	}
	var list []*templateVersion
	err = c.read(ctx, func(tx *sql.Tx) error {
		t, err := loadTemplate(ctx, tx, acct, ref.id, ref.name)
		if err != nil {
			return err
		}
		var nums []int
		if len(wanted) > 0 {
			for _, v := range wanted {
				n, err := t.resolveVersion(v)
				if err != nil {
					return err
				}
				nums = append(nums, n)
			}
		} else {
			rows, err := tx.QueryContext(ctx, `SELECT version FROM launch_template_versions WHERE account = ? AND template_id = ? AND version BETWEEN ? AND ? ORDER BY version`,
				acct, t.id, minV, maxV)
			if err != nil {
				return fmt.Errorf("listing launch template versions, %w", err)
			}
			for rows.Next() {
				var n int
				if err := rows.Scan(&n); err != nil {
					rows.Close()
					return fmt.Errorf("listing launch template versions, %w", err)
				}
				nums = append(nums, n)
			}
			if err := rows.Close(); err != nil {
				return fmt.Errorf("listing launch template versions, %w", err)
			}
		}
		for _, n := range nums {
			v, err := loadVersion(ctx, tx, acct, t, n)
			if err != nil {
				return err
			}
			list = append(list, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.open("launchTemplateVersionSet")
	for _, v := range list {
		c.writeVersion(w, "item", acct, v)
	}
	w.close("launchTemplateVersionSet")
	return nil
}

func (c *Cloud) writeVersion(w *xmlWriter, elem, acct string, v *templateVersion) {
	w.open(elem)
	w.text("launchTemplateId", v.templateID)
	w.text("launchTemplateName", v.templateName)
	w.int("versionNumber", v.version)
	if v.description != "" {
		w.text("versionDescription", v.description)
	}
	w.time("createTime", time.Unix(0, v.createdNs))
	w.text("createdBy", "arn:aws:iam::"+tenants.AccountID(acct)+":root")
	w.bool("defaultVersion", v.isDefault)
	d := v.data
	w.open("launchTemplateData")
	if d.ImageID != "" {
		w.text("imageId", d.ImageID)
	}
	if d.InstanceType != "" {
		w.text("instanceType", d.InstanceType)
	}
	if d.KeyName != "" {
		w.text("keyName", d.KeyName)
	}
	writeItems(w, "securityGroupIdSet", d.GroupIDs)
	writeItems(w, "securityGroupSet", d.GroupNames)
	if d.UserData != "" {
		w.text("userData", d.UserData)
	}
	if d.ProfileARN != "" || d.ProfileName != "" {
		w.open("iamInstanceProfile")
		if d.ProfileARN != "" {
			w.text("arn", d.ProfileARN)
		}
		if d.ProfileName != "" {
			w.text("name", d.ProfileName)
		}
		w.close("iamInstanceProfile")
	}
	if d.MarketType != "" {
		w.open("instanceMarketOptions")
		w.text("marketType", d.MarketType)
		if d.MaxPrice != "" {
			w.open("spotOptions")
			w.text("maxPrice", d.MaxPrice)
			w.close("spotOptions")
		}
		w.close("instanceMarketOptions")
	}
	if d.Zone != "" {
		w.open("placement")
		w.text("availabilityZone", d.Zone)
		w.close("placement")
	}
	if d.SubnetID != "" {
		w.open("networkInterfaceSet")
		w.open("item")
		w.int("deviceIndex", 0)
		w.text("subnetId", d.SubnetID)
		w.close("item")
		w.close("networkInterfaceSet")
	}
	w.close("launchTemplateData")
	w.close(elem)
}

// writeItems writes values as the items of set; nothing when there are
// none.
func writeItems(w *xmlWriter, set string, values []string) {
	if len(values) == 0 {
		return
	}
	w.open(set)
	for _, v := range values {
		w.text("item", v)
	}
	w.close(set)
}
