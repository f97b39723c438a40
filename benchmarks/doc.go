// Package benchmarks measures geosteer side by side with peer libraries.
//
// It is a module of its own so that peers never enter the library's
// dependency graph. Benchmarks read the shared country database by path
// (../shared/data beside the project) and skip when it is absent; see
// README.md for the commands and the numbers.
package benchmarks
