package rulesets

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
)

var errJSONNotNumber = errors.New("noise needs a number")
var errJSONNotDate = errors.New("shift_date needs an ISO 8601 date or timestamp string")

// textTarget is what nested json rules compile against: the scalar as a
// text value without limits.
func textTarget() *target {
	return &target{typ: &nopii.Type{Schema: "pg_catalog", Name: "text"}, class: cText, label: "text"}
}

// compileJSON rewrites json and jsonb values, applying each path's rule to
// the scalars there.
func compileJSON(c *target, p params, key []byte) (valueFunc, error) {
	if c.class != cJSON && c.class != cJSONB {
		return nil, needs(c, "a json or jsonb")
	}
	var actions []redact.JSONAction
	for _, ps := range p.paths {
		a := redact.JSONAction{Path: ps.path}
		var err error
		switch ps.spec.Rule {
		case RuleKeep:
			continue
		case RuleDestroy:
			a.Whole = []byte("null")
		case RuleReplace:
			if a.Whole, err = json.Marshal(normalizeJSON(ps.params.value)); err != nil {
				return nil, fmt.Errorf("json path %s: value: %w", ps.path, err)
			}
		case RuleNoise:
			a.Scalar = jsonNoise(ps.path, ps.params, key)
		case RuleShiftDate:
			a.Scalar = jsonShift(ps.path, ps.params, key)
		default:
			f, err := compileValue(textTarget(), ps.spec.Rule, ps.params, key)
			if err != nil {
				return nil, fmt.Errorf("json path %s: rule %s: %w", ps.path, ps.spec.Rule, err)
			}
			a.Scalar = jsonText(ps.path, f)
		}
		actions = append(actions, a)
	}
	w := redact.NewJSONRewriter(actions)
	if c.class == cJSONB {
		return func(dst, src []byte) ([]byte, error) {
			if len(src) == 0 || src[0] != redact.JSONBVersion {
				return dst, fmt.Errorf("%w: unknown jsonb version", redact.ErrInvalidValue)
			}
			return w.Rewrite(append(dst, redact.JSONBVersion), src[1:])
		}, nil
	}
	return w.Rewrite, nil
}

// jsonText applies a text rule to a scalar's text and outputs a string.
func jsonText(path redact.JSONPath, f valueFunc) redact.JSONScalarFunc {
	var scratch []byte
	return func(dst []byte, _ redact.JSONKind, text []byte) ([]byte, error) {
		out, err := f(scratch[:0], text)
		if err != nil {
			return dst, fmt.Errorf("json path %s: %w", path, err)
		}
		scratch = out[:0]
		return redact.AppendJSONString(dst, out), nil
	}
}

// jsonNoise moves numbers, and strings that hold numbers, keeping their
// scale and their JSON kind.
func jsonNoise(path redact.JSONPath, p params, key []byte) redact.JSONScalarFunc {
	k := redact.NewKeyed(key)
	var d redact.Digest
	var x redact.Decimal
	var scratch []byte
	return func(dst []byte, kind redact.JSONKind, text []byte) ([]byte, error) {
		if kind == redact.JSONBool {
			return dst, fmt.Errorf("json path %s: %w", path, errJSONNotNumber)
		}
		k.Sum(&d, text)
		if kind == redact.JSONNumber {
			out, err := redact.AppendNoisyNumber(dst, text, p.percent, &d, &x)
			if err != nil {
				return dst, fmt.Errorf("json path %s: %w", path, errJSONNotNumber)
			}
			return out, nil
		}
		out, err := redact.AppendNoisyNumber(scratch[:0], text, p.percent, &d, &x)
		if err != nil {
			return dst, fmt.Errorf("json path %s: %w", path, errJSONNotNumber)
		}
		scratch = out[:0]
		return redact.AppendJSONString(dst, out), nil
	}
}

// jsonShift moves ISO 8601 date and timestamp strings by the per-value
// offset shift_date gives a date column holding the same day.
func jsonShift(path redact.JSONPath, p params, key []byte) redact.JSONScalarFunc {
	k := redact.NewKeyed(key)
	var d redact.Digest
	var scratch []byte
	return func(dst []byte, kind redact.JSONKind, text []byte) ([]byte, error) {
		if kind != redact.JSONString {
			return dst, fmt.Errorf("json path %s: %w", path, errJSONNotDate)
		}
		k.Sum(&d, text)
		out, err := redact.AppendShiftedDateText(scratch[:0], text, redact.ShiftOffset(&d, p.maxDays))
		if err != nil {
			return dst, fmt.Errorf("json path %s: %w", path, errJSONNotDate)
		}
		scratch = out[:0]
		return redact.AppendJSONString(dst, out), nil
	}
}
