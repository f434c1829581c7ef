package lambda

import (
	"net/http"
	"net/url"
	"strings"
)

// Tags (TagResource, UntagResource, ListTags) by function ARN. Tags are
// the function's, not a version's. Keys with the gust: prefix report the
// function's gust settings (see the package doc) and change only with
// them; keys with aws: are AWS's, as on Lambda.

const maxTags = 50

// taggedFunction resolves a tags call's resource: an unqualified function
// ARN of the tenant's account.
func (c *Cloud) taggedFunction(tenant, rawARN string) (*function, error) {
	arn, err := url.PathUnescape(rawARN)
	if err != nil || !strings.HasPrefix(arn, "arn:") {
		return nil, errInvalidParameter("invalid resource %q: use the function's ARN", rawARN)
	}
	f, qual, err := c.named(tenant, arn)
	if err != nil {
		return nil, err
	}
	if qual != "" {
		return nil, errInvalidParameter("tags belong to the function: use its unqualified ARN")
	}
	return f, nil
}

func checkTagKey(k string) error {
	switch {
	case len(k) < 1 || len(k) > 128:
		return errInvalidParameter("tag key %q must be 1 to 128 characters", k)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return errInvalidParameter("tag keys starting with aws: are reserved for AWS")
	case strings.HasPrefix(k, "gust:"):
		return errInvalidParameter("tag %s reports a gust setting of the function: change it with UpdateFunctionConfiguration", k)
	}
	return nil
}

func (c *Cloud) tagResource(w http.ResponseWriter, r *http.Request, tenant, rawARN string) {
	var req struct {
		Tags map[string]string `json:"Tags"`
	}
	check := func() error {
		if len(req.Tags) == 0 {
			return errInvalidParameter("Tags is required")
		}
		for k, v := range req.Tags {
			if err := checkTagKey(k); err != nil {
				return err
			}
			if len(v) > 256 {
				return errInvalidParameter("the value of tag %q must be at most 256 characters", k)
			}
		}
		return nil
	}
	c.withFunction(w, r, fnCall{tenant: tenant, raw: rawARN, find: byARN, body: &req, check: check, write: true}, func(f *function) error {
		tags := make(map[string]string, len(f.Config.Tags)+len(req.Tags))
		for k, v := range f.Config.Tags {
			tags[k] = v
		}
		for k, v := range req.Tags {
			tags[k] = v
		}
		if len(tags) > maxTags {
			return errInvalidParameter("a function can have at most %d tags; this would make %d", maxTags, len(tags))
		}
		return c.setTags(w, r, f, tags)
	})
}

func (c *Cloud) untagResource(w http.ResponseWriter, r *http.Request, tenant, rawARN string) {
	keys := r.URL.Query()["tagKeys"]
	check := func() error {
		if len(keys) == 0 {
			return errInvalidParameter("tagKeys is required")
		}
		for _, k := range keys {
			if err := checkTagKey(k); err != nil {
				return err
			}
		}
		return nil
	}
	c.withFunction(w, r, fnCall{tenant: tenant, raw: rawARN, find: byARN, check: check, write: true}, func(f *function) error {
		tags := make(map[string]string, len(f.Config.Tags))
		for k, v := range f.Config.Tags {
			tags[k] = v
		}
		for _, k := range keys {
			delete(tags, k)
		}
		return c.setTags(w, r, f, tags)
	})
}

// setTags stores f with tags, as the same version: tags are not code or
// configuration. The caller holds c.ctl.
func (c *Cloud) setTags(w http.ResponseWriter, r *http.Request, f *function, tags map[string]string) error {
	if len(tags) == 0 {
		tags = nil
	}
	g := *f
	g.Config.Tags = tags
	if err := c.store.put(r.Context(), &g); err != nil {
		return err
	}
	c.setFunction(&g)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Cloud) listTags(w http.ResponseWriter, r *http.Request, tenant, rawARN string) {
	c.withFunction(w, r, fnCall{tenant: tenant, raw: rawARN, find: byARN}, func(f *function) error {
		tags := f.Config.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		writeJSON(w, http.StatusOK, struct {
			Tags map[string]string `json:"Tags"`
		}{tags})
		return nil
	})
}
