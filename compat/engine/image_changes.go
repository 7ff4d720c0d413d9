package engine

import (
	"encoding/json"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// applyChanges applies docker's --change lines (import and commit) to
// cfg: the Dockerfile instructions that only touch the config, each on
// one line, in order. Instruction names are case-insensitive; CMD,
// ENTRYPOINT and SHELL take the exec form (a JSON array) or the shell
// form, which runs under the image's SHELL (default /bin/sh -c).
func applyChanges(cfg *v1.Config, changes []string) error {
	cmdSet := false
	for _, line := range changes {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "CMD":
			cfg.Cmd = commandForm(cfg, rest)
			cmdSet = true
		case "ENTRYPOINT":
			cfg.Entrypoint = commandForm(cfg, rest)
			if !cmdSet {
				cfg.Cmd = nil // docker: a new entrypoint drops a CMD not set with it
			}
		case "SHELL":
			var sh []string
			if json.Unmarshal([]byte(rest), &sh) != nil || len(sh) == 0 {
				return errorf(errdefs.ErrInvalidArgument, "SHELL requires the arguments to be in JSON form")
			}
			cfg.Shell = sh
		case "ENV":
			kvs, err := keyValues("ENV", rest, true)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
			}
		case "LABEL":
			kvs, err := keyValues("LABEL", rest, false)
			if err != nil {
				return err
			}
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, kv := range kvs {
				cfg.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			ports, err := splitWords(rest)
			if err != nil || len(ports) == 0 {
				return errorf(errdefs.ErrInvalidArgument, "EXPOSE requires at least one argument")
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range ports {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				cfg.ExposedPorts[strings.ToLower(p)] = struct{}{}
			}
		case "VOLUME":
			vols := []string{}
			if isJSONArray(rest) {
				if err := json.Unmarshal([]byte(rest), &vols); err != nil {
					return errorf(errdefs.ErrInvalidArgument, "VOLUME: %v", err)
				}
			} else {
				var err error
				if vols, err = splitWords(rest); err != nil {
					return errorf(errdefs.ErrInvalidArgument, "VOLUME: %v", err)
				}
			}
			if len(vols) == 0 {
				return errorf(errdefs.ErrInvalidArgument, "VOLUME requires at least one argument")
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				cfg.Volumes[v] = struct{}{}
			}
		case "WORKDIR":
			if rest == "" {
				return errorf(errdefs.ErrInvalidArgument, "WORKDIR requires exactly one argument")
			}
			if !strings.HasPrefix(rest, "/") {
				base := cfg.WorkingDir
				if base == "" {
					base = "/"
				}
				rest = strings.TrimSuffix(base, "/") + "/" + rest
			}
			cfg.WorkingDir = rest
		case "USER":
			if rest == "" {
				return errorf(errdefs.ErrInvalidArgument, "USER requires exactly one argument")
			}
			cfg.User = rest
		case "STOPSIGNAL":
			if rest == "" {
				return errorf(errdefs.ErrInvalidArgument, "STOPSIGNAL requires exactly one argument")
			}
			cfg.StopSignal = rest
		case "ONBUILD":
			if rest == "" {
				return errorf(errdefs.ErrInvalidArgument, "ONBUILD requires at least one argument")
			}
			cfg.OnBuild = append(cfg.OnBuild, rest)
		default:
			return errorf(errdefs.ErrInvalidArgument, "%s is not a valid change command", instr)
		}
	}
	return nil
}

func isJSONArray(s string) bool {
	var v []string
	return strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &v) == nil
}

// commandForm is CMD's or ENTRYPOINT's argument: a JSON array as is, else
// the line under the shell.
func commandForm(cfg *v1.Config, rest string) []string {
	var argv []string
	if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &argv) == nil {
		return argv
	}
	if rest == "" {
		return nil
	}
	shell := cfg.Shell
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, shell...), rest)
}

// keyValues reads "k=v k2='v 2'" or the legacy "k v w" (one key, the rest
// its value).
func keyValues(instr, rest string, legacy bool) ([][2]string, error) {
	words, err := splitWords(rest)
	if err != nil {
		return nil, errorf(errdefs.ErrInvalidArgument, "%s: %v", instr, err)
	}
	if len(words) == 0 {
		return nil, errorf(errdefs.ErrInvalidArgument, "%s requires at least one argument", instr)
	}
	if !strings.Contains(words[0], "=") {
		if !legacy && len(words) < 2 {
			return nil, errorf(errdefs.ErrInvalidArgument, "%s names can not be blank", instr)
		}
		k, v, _ := strings.Cut(strings.TrimSpace(rest), " ")
		vw, err := splitWords(strings.TrimSpace(v))
		if err != nil {
			return nil, errorf(errdefs.ErrInvalidArgument, "%s: %v", instr, err)
		}
		return [][2]string{{k, strings.Join(vw, " ")}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, errorf(errdefs.ErrInvalidArgument, "%s names can not be blank", instr)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on blanks outside quotes; quotes are removed, and a
// backslash escapes the next character outside single quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, c := range s {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\' && quote != '\'':
			escaped = true
			inWord = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote = c
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errorf(errdefs.ErrInvalidArgument, "unmatched quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// setEnv sets key in a KEY=value list, replacing an earlier value.
func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k != key {
			out = append(out, e)
		}
	}
	return append(out, key+"="+value)
}
