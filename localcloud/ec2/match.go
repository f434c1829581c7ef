package ec2

import "slices"

// Matching helpers the Describe actions share.

// matchAttrs reports whether every filter holds the value attrs gives its
// name, for a resource whose filters each compare one fixed value. A
// filter attrs does not name is InvalidParameterValue, as AWS answers.
func matchAttrs(filters []filter, attrs map[string]string) (bool, error) {
	show := true
	for _, f := range filters {
		v, ok := attrs[f.Name]
		if !ok {
			return false, apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
		show = show && contains(f.Values, v)
	}
	return show, nil
}

// missingID returns the first of ids that no item's id is, ok false when
// every one is found.
func missingID[T any](ids []string, items []T, id func(T) string) (missing string, ok bool) {
	for _, want := range ids {
		if !slices.ContainsFunc(items, func(it T) bool { return id(it) == want }) {
			return want, true
		}
	}
	return "", false
}
