package steer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/geosteer/geosteer/geo"
)

// CompileFile compiles the policy file at policyPath against the country
// database at dbPath: what a command taking "-policy FILE -db PATH" does
// when it starts and again on every reload. It is [LoadFile], geo.Open
// and [Compile], with the database's provenance kept for [Plan.Explain]
// ([FromGeo]).
//
// An empty dbPath means the database geo.FindDefault finds. A policy
// without geo-derived groups (countries, continents, unknown) opens no
// database. When none is given and none is found, the policy is compiled
// without country data and its safety.on_missing_data decides; the
// default, error, fails the compilation.
//
// opts.Logger, if set, is told which database is used (or that none is)
// and receives geo's load summary; opts.Context cancels the load. Policy
// problems come back as Load and Compile return them, each a
// *[PolicyError] naming file, line and field.
func CompileFile(policyPath, dbPath string, opts *Options) (*Plan, error) {
	if opts == nil {
		opts = &Options{}
	}
	p, err := LoadFile(policyPath)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if !slices.ContainsFunc(p.Groups, func(g Group) bool { return g.geo() }) {
		return Compile(p, nil, opts)
	}
	if dbPath == "" {
		var ok bool
		if dbPath, ok = geo.FindDefault(); !ok {
			log.Warn("steer: no country database given, none found; compiling without country data",
				"looked_in", defaultDirs(), "on_missing_data", p.Safety.OnMissingData)
			plan, err := Compile(p, nil, opts)
			if err != nil {
				err = errors.Join(err, fmt.Errorf("steer: no country database was given, and none was found in %s", defaultDirs()))
			}
			return plan, err
		}
	}
	log.Info("steer: country database", "path", dbPath)
	db, err := geo.Open(ctx, dbPath, &geo.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	return Compile(p, FromGeo(db), opts)
}

// defaultDirs lists the directories of geo.DefaultPaths.
func defaultDirs() string {
	var dirs []string
	for _, p := range geo.DefaultPaths {
		if d := filepath.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return "(geo.DefaultPaths is empty)"
	}
	return strings.Join(dirs, ", ")
}
