package firecracker

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// apiSpec is the part of Firecracker's swagger 2.0 API description
// (shared/reference/firecracker/firecracker-api.yaml) the fake checks
// requests against.
type apiSpec struct {
	Info struct {
		Version string `yaml:"version"`
	} `yaml:"info"`
	Paths       map[string]map[string]apiOperation `yaml:"paths"`
	Definitions map[string]*apiSchema              `yaml:"definitions"`
}

type apiOperation struct {
	Summary    string `yaml:"summary"`
	Parameters []struct {
		Name     string     `yaml:"name"`
		In       string     `yaml:"in"`
		Required bool       `yaml:"required"`
		Schema   *apiSchema `yaml:"schema"`
	} `yaml:"parameters"`
}

type apiSchema struct {
	Ref                  string                `yaml:"$ref"`
	Type                 string                `yaml:"type"`
	Required             []string              `yaml:"required"`
	Properties           map[string]*apiSchema `yaml:"properties"`
	Items                *apiSchema            `yaml:"items"`
	Enum                 []any                 `yaml:"enum"`
	Minimum              *float64              `yaml:"minimum"`
	Maximum              *float64              `yaml:"maximum"`
	AdditionalProperties any                   `yaml:"additionalProperties"`
}

func loadSpec(path string) (*apiSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s apiSpec
	if err := yaml.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if len(s.Paths) == 0 || len(s.Definitions) == 0 {
		return nil, fmt.Errorf("%s: no paths or definitions", path)
	}
	return &s, nil
}

// legacyV024 changes the spec into Firecracker v0.24's where it differs in
// what the driver sends: machine-config required ht_enabled (renamed smt
// and made optional in v1.0), vsock required vsock_id.
func (s *apiSpec) legacyV024() {
	mc := s.Definitions["MachineConfiguration"]
	mc.Properties["ht_enabled"] = &apiSchema{Type: "boolean"}
	delete(mc.Properties, "smt")
	mc.Required = append(mc.Required, "ht_enabled")
	vs := s.Definitions["Vsock"]
	vs.Required = append(vs.Required, "vsock_id")
}

// route finds the operation for method and path, and the path parameters.
func (s *apiSpec) route(method, path string) (*apiOperation, map[string]string, bool) {
	segs := strings.Split(path, "/")
	for tmpl, ops := range s.Paths {
		op, ok := ops[strings.ToLower(method)]
		if !ok {
			continue
		}
		tsegs := strings.Split(tmpl, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		params := map[string]string{}
		match := true
		for i, ts := range tsegs {
			if strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") && segs[i] != "" {
				params[strings.Trim(ts, "{}")] = segs[i]
			} else if ts != segs[i] {
				match = false
				break
			}
		}
		if match {
			return &op, params, true
		}
	}
	return nil, nil, false
}

func (s *apiSpec) resolve(sc *apiSchema) *apiSchema {
	for sc != nil && sc.Ref != "" {
		sc = s.Definitions[strings.TrimPrefix(sc.Ref, "#/definitions/")]
	}
	return sc
}

// check validates a JSON value (decoded with UseNumber) against sc, the
// way Firecracker's serde structs do: required fields, JSON types, enums,
// bounds, and no unknown fields.
func (s *apiSpec) check(v any, sc *apiSchema, where string) error {
	sc = s.resolve(sc)
	if sc == nil {
		return fmt.Errorf("%s: no schema", where)
	}
	typ := sc.Type
	if typ == "" && sc.Properties != nil {
		typ = "object"
	}
	switch typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: invalid type: expected an object", where)
		}
		for _, r := range sc.Required {
			if _, ok := obj[r]; !ok {
				return fmt.Errorf("%s: missing field `%s`", where, r)
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, ok := sc.Properties[k]
			if !ok {
				if ap := sc.AdditionalProperties; ap != nil && ap != false {
					continue
				}
				return fmt.Errorf("%s: unknown field `%s`", where, k)
			}
			if err := s.check(obj[k], p, where+"."+k); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: invalid type: expected an array", where)
		}
		for i, e := range arr {
			if err := s.check(e, sc.Items, fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: invalid type: expected a string", where)
		}
		if len(sc.Enum) > 0 && !slices.ContainsFunc(sc.Enum, func(e any) bool { return fmt.Sprint(e) == str }) {
			return fmt.Errorf("%s: unknown variant `%s`, expected one of %v", where, str, sc.Enum)
		}
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s: invalid type: expected an integer", where)
		}
		i, err := n.Int64()
		if err != nil {
			return fmt.Errorf("%s: invalid type: %s is not an integer", where, n)
		}
		if sc.Minimum != nil && float64(i) < *sc.Minimum || sc.Maximum != nil && float64(i) > *sc.Maximum {
			return fmt.Errorf("%s: %d out of range", where, i)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: invalid type: expected a boolean", where)
		}
	default:
		return fmt.Errorf("%s: schema type %q not understood by the fake", where, typ)
	}
	return nil
}
